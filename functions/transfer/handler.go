// Function transfer is triggered by the Kafka connector for records on
// msg-chat-transfer (one record, or a JSON array when the connector batches).
// It stores, sequences and pushes them; a non-2xx answer makes the connector
// retry, so storing is idempotent on msgId.
package function

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"os"
	"time"

	handler "github.com/openfaas/templates-sdk/go-http"
	"github.com/redis/go-redis/v9"

	"easychat/pkg/call"
	"easychat/pkg/push"
	"easychat/pkg/route"
	"easychat/pkg/store"
	"easychat/pkg/transfer"
)

var (
	signer = call.Signer()
	svc    = call.NewLazy(func() (*transfer.Service, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		st, err := store.Open(ctx, env("MONGO_URI", "mongodb://127.0.0.1:27017/"), env("MONGO_DB", "easychat"))
		if err != nil {
			return nil, err
		}
		if err := st.EnsureIndexes(ctx); err != nil {
			return nil, err
		}
		opt, err := redis.ParseURL(env("REDIS_URL", "redis://127.0.0.1:6379/0"))
		if err != nil {
			return nil, err
		}
		return &transfer.Service{
			Store:  st,
			Routes: route.NewRedis(redis.NewClient(opt), 30*time.Second),
			Push:   push.NewClient(signer),
			Log:    slog.Default(),
		}, nil
	})
)

// Handle processes one invocation from the connector.
func Handle(req handler.Request) (handler.Response, error) {
	if _, err := call.Verify(signer, req, "transfer"); err != nil {
		return call.Unauthorized(err), nil
	}
	evs, err := transfer.Decode(req.Body)
	if err != nil {
		// Permanent: the connector dead-letters it instead of retrying forever.
		return call.Error(http.StatusUnprocessableEntity, err), nil
	}
	s, err := svc.Get()
	if err != nil {
		return call.Error(http.StatusServiceUnavailable, err), nil
	}
	if err := s.Handle(req.Context(), evs); err != nil {
		if errors.Is(err, transfer.ErrBadRecord) {
			return call.Error(http.StatusUnprocessableEntity, err), nil
		}
		return call.Error(http.StatusServiceUnavailable, err), nil
	}
	return call.JSON(http.StatusOK, map[string]int{"stored": len(evs)}), nil
}

func env(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}
