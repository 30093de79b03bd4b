// Package reject classifies why a request was refused, so every function
// answers the same status for the same kind of refusal and callers (the
// gateway, the connector) can tell a client's mistake from an outage.
package reject

import (
	"errors"
	"fmt"
	"net/http"
)

// Kinds of refusal. Anything else is an outage (503, retryable).
var (
	ErrInvalid      = errors.New("invalid request")
	ErrUnauthorized = errors.New("unauthorized")
	ErrForbidden    = errors.New("forbidden")
	ErrNotFound     = errors.New("not found")
	ErrConflict     = errors.New("conflict")
	// ErrLimited is a request over a rate limit: retryable later.
	ErrLimited = errors.New("limited")
	// ErrTooLarge is a request for more than a size limit allows.
	ErrTooLarge = errors.New("too large")
	// ErrUnsupported is content of a type that is not accepted.
	ErrUnsupported = errors.New("unsupported type")
)

// Invalid returns an ErrInvalid with a message for the client.
func Invalid(format string, a ...any) error { return wrap(ErrInvalid, format, a...) }

// Unauthorized returns an ErrUnauthorized with a message for the client.
func Unauthorized(format string, a ...any) error { return wrap(ErrUnauthorized, format, a...) }

// Forbidden returns an ErrForbidden with a message for the client.
func Forbidden(format string, a ...any) error { return wrap(ErrForbidden, format, a...) }

// NotFound returns an ErrNotFound with a message for the client.
func NotFound(format string, a ...any) error { return wrap(ErrNotFound, format, a...) }

// Conflict returns an ErrConflict with a message for the client.
func Conflict(format string, a ...any) error { return wrap(ErrConflict, format, a...) }

// Limited returns an ErrLimited with a message for the client.
func Limited(format string, a ...any) error { return wrap(ErrLimited, format, a...) }

// TooLarge returns an ErrTooLarge with a message for the client.
func TooLarge(format string, a ...any) error { return wrap(ErrTooLarge, format, a...) }

// Unsupported returns an ErrUnsupported with a message for the client.
func Unsupported(format string, a ...any) error { return wrap(ErrUnsupported, format, a...) }

// Refusal reports whether err is one of the kinds above: a refusal whose
// text is meant for the client. Anything else is an internal failure, whose
// text stays in the logs.
func Refusal(err error) bool { return Status(err) != http.StatusServiceUnavailable }

type refusal struct {
	kind error
	msg  string
}

func (r *refusal) Error() string        { return r.msg }
func (r *refusal) Is(target error) bool { return target == r.kind }

func wrap(kind error, format string, a ...any) error {
	return &refusal{kind: kind, msg: fmt.Sprintf(format, a...)}
}

// Status is the HTTP status for err.
func Status(err error) int {
	switch {
	case errors.Is(err, ErrInvalid):
		return http.StatusBadRequest
	case errors.Is(err, ErrUnauthorized):
		return http.StatusUnauthorized
	case errors.Is(err, ErrForbidden):
		return http.StatusForbidden
	case errors.Is(err, ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, ErrConflict):
		return http.StatusConflict
	case errors.Is(err, ErrLimited):
		return http.StatusTooManyRequests
	case errors.Is(err, ErrTooLarge):
		return http.StatusRequestEntityTooLarge
	case errors.Is(err, ErrUnsupported):
		return http.StatusUnsupportedMediaType
	default:
		return http.StatusServiceUnavailable
	}
}
