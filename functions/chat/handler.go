// Function chat accepts conversation.chat frames forwarded by the websocket
// gateway. Only the gateway's signature vouches for the user; the answer
// ({msgId, conversationId}) is what the gateway acks to the client.
package function

import (
	"context"
	"errors"
	"net/http"
	"os"
	"time"

	handler "github.com/openfaas/templates-sdk/go-http"

	"easychat/pkg/bus"
	"easychat/pkg/call"
	"easychat/pkg/chat"
	"easychat/pkg/store"
)

var (
	signer = call.Signer()
	svc    = call.NewLazy(func() (*chat.Service, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		st, err := store.Open(ctx, env("MONGO_URI", "mongodb://127.0.0.1:27017/"), env("MONGO_DB", "easychat"))
		if err != nil {
			return nil, err
		}
		return &chat.Service{Pub: bus.NewProducer(env("KAFKA_BROKERS", "127.0.0.1:9092")), Groups: st, Now: time.Now}, nil
	})
)

// Handle answers one chat.
func Handle(req handler.Request) (handler.Response, error) {
	user, err := call.Verify(signer, req, "chat")
	if err != nil {
		return call.Unauthorized(err), nil
	}
	s, err := svc.Get()
	if err != nil {
		return call.Error(http.StatusServiceUnavailable, err), nil
	}
	ack, err := s.Accept(req.Context(), user, req.Header.Get("X-Easychat-Frame-Id"), req.Body)
	switch {
	case errors.Is(err, chat.ErrInvalid):
		return call.Error(http.StatusBadRequest, err), nil
	case errors.Is(err, chat.ErrForbidden):
		return call.Error(http.StatusForbidden, err), nil
	case err != nil:
		return call.Error(http.StatusServiceUnavailable, err), nil
	}
	return call.JSON(http.StatusOK, ack), nil
}

func env(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}
