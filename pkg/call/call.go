// Package call is the function side of an authenticated call: it verifies the
// caller's signature on a golang-http request and shapes JSON answers. Every
// function is reachable by anyone who can reach the FaaS gateway, so nothing is
// trusted before Verify.
package call

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"

	handler "github.com/openfaas/templates-sdk/go-http"

	"easychat/pkg/batch"
	"easychat/pkg/reject"
	"easychat/pkg/secret"
	"easychat/pkg/sign"
)

// Signer returns the signer keyed by the internal-key secret.
func Signer() *sign.Signer {
	return sign.New(secret.Read(secret.Internal, "INTERNAL_KEY", sign.DevKey))
}

// Verify checks that req was signed for function name and returns the user the
// signer vouches for ("" for component calls such as the connector's).
func Verify(s *sign.Signer, req handler.Request, name string) (string, error) {
	return s.Verify(req.Header, "/function/"+name, req.Body)
}

// JSON answers status with v encoded as JSON.
func JSON(status int, v any) handler.Response {
	b, err := json.Marshal(v)
	if err != nil {
		return Error(http.StatusInternalServerError, err)
	}
	return handler.Response{
		StatusCode: status,
		Body:       b,
		Header:     http.Header{"Content-Type": []string{"application/json"}},
	}
}

// Error answers status with {"error": err}.
func Error(status int, err error) handler.Response {
	b, _ := json.Marshal(map[string]string{"error": err.Error()})
	return handler.Response{
		StatusCode: status,
		Body:       b,
		Header:     http.Header{"Content-Type": []string{"application/json"}},
	}
}

// Fail answers err with the status of its kind (see package reject).
func Fail(err error) handler.Response { return Error(reject.Status(err), err) }

// Action serves a function whose body is JSON handled by do. Every request
// must carry a valid signature for /function/<name>; user is the user the
// signer vouches for ("" for anonymous calls, which do must refuse if needed).
func Action(name string, do func(ctx context.Context, user string, req handler.Request) (any, error)) func(handler.Request) (handler.Response, error) {
	signer := Signer()
	return func(req handler.Request) (handler.Response, error) {
		user, err := Verify(signer, req, name)
		if err != nil {
			return Unauthorized(err), nil
		}
		out, err := do(req.Context(), user, req)
		if err != nil {
			return Fail(err), nil
		}
		return JSON(http.StatusOK, out), nil
	}
}

// Unauthorized answers a request whose signature did not verify.
func Unauthorized(err error) handler.Response {
	return Error(http.StatusUnauthorized, errors.New("unauthorized: "+err.Error()))
}

// Lazy builds a function's dependencies on first use and retries after a
// failure, so a function that starts before Kafka or Mongo recovers by itself.
type Lazy[T any] struct {
	mu    sync.Mutex
	val   T
	ok    bool
	build func() (T, error)
}

// NewLazy returns a Lazy that calls build until it succeeds once.
func NewLazy[T any](build func() (T, error)) *Lazy[T] { return &Lazy[T]{build: build} }

// Get returns the built value or the latest build error.
func (l *Lazy[T]) Get() (T, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.ok {
		return l.val, nil
	}
	v, err := l.build()
	if err != nil {
		var zero T
		return zero, err
	}
	l.val, l.ok = v, true
	return v, nil
}

// MaxBatch bounds the items of one batched call.
const MaxBatch = 1024

// Batch serves batched calls of function name (see package batch): the
// request must be signed as a component call, since the users are vouched
// for inside the signed body; do answers every item.
func Batch(name string, do func(ctx context.Context, items []batch.Item) ([]batch.Result, error)) func(handler.Request) (handler.Response, error) {
	signer := Signer()
	return func(req handler.Request) (handler.Response, error) {
		user, err := Verify(signer, req, name)
		if err != nil {
			return Unauthorized(err), nil
		}
		if user != "" {
			return Unauthorized(errors.New("a batch is a component call, not a user's")), nil
		}
		var items []batch.Item
		if err := json.Unmarshal(req.Body, &items); err != nil {
			return Error(http.StatusBadRequest, fmt.Errorf("invalid batch: %w", err)), nil
		}
		if len(items) == 0 {
			return Error(http.StatusBadRequest, errors.New("empty batch")), nil
		}
		if len(items) > MaxBatch {
			return Error(http.StatusRequestEntityTooLarge, fmt.Errorf("batch of %d items (max %d)", len(items), MaxBatch)), nil
		}
		out, err := do(req.Context(), items)
		if err != nil {
			return Fail(err), nil
		}
		if len(out) != len(items) {
			return Error(http.StatusInternalServerError, fmt.Errorf("%d results for %d items", len(out), len(items))), nil
		}
		return JSON(http.StatusOK, out), nil
	}
}
