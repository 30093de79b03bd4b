// Package deps builds a function's clients from its environment, once per
// process and lazily: a function replica starts (and answers health checks)
// before Kafka, Mongo or Redis are reachable, and recovers when they are.
package deps

import (
	"context"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"easychat/pkg/bus"
	"easychat/pkg/call"
	"easychat/pkg/push"
	"easychat/pkg/route"
	"easychat/pkg/secret"
	"easychat/pkg/store"
	"easychat/pkg/token"
)

// Env returns the value of k, or def.
func Env(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

var (
	stores = call.NewLazy(func() (*store.Store, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		st, err := store.Open(ctx, Env("MONGO_URI", "mongodb://127.0.0.1:27017/"), Env("MONGO_DB", "easychat"))
		if err != nil {
			return nil, err
		}
		if err := st.EnsureIndexes(ctx); err != nil {
			return nil, err
		}
		return st, nil
	})
	producers = call.NewLazy(func() (*bus.Producer, error) {
		return bus.NewProducer(Env("KAFKA_BROKERS", "127.0.0.1:9092")), nil
	})
	registries = call.NewLazy(func() (*route.Redis, error) {
		opt, err := redis.ParseURL(Env("REDIS_URL", "redis://127.0.0.1:6379/0"))
		if err != nil {
			return nil, err
		}
		ttl, err := time.ParseDuration(Env("ROUTE_TTL", "30s"))
		if err != nil {
			return nil, err
		}
		return route.NewRedis(redis.NewClient(opt), ttl), nil
	})
)

// Store is the Mongo store (MONGO_URI, MONGO_DB).
func Store() (*store.Store, error) { return stores.Get() }

// Producer is the Kafka producer (KAFKA_BROKERS).
func Producer() (*bus.Producer, error) { return producers.Get() }

// Routes is the route registry (REDIS_URL, ROUTE_TTL).
func Routes() (*route.Redis, error) { return registries.Get() }

// Pusher posts to gateways, signed with the internal key. One client per
// process, so connections to the gateways are reused across invocations.
func Pusher() *push.Client { return pusher() }

var pusher = sync.OnceValue(func() *push.Client { return push.NewClient(call.Signer()) })

// Tokens issues user tokens (secret jwt-secret or JWT_SECRET; TOKEN_TTL).
func Tokens() *token.Issuer {
	ttl, err := time.ParseDuration(Env("TOKEN_TTL", "168h"))
	if err != nil {
		ttl = 168 * time.Hour
	}
	return token.New(secret.Read(secret.JWT, "JWT_SECRET", token.DevSecret), ttl)
}

// Log is the function's logger.
func Log() *slog.Logger { return slog.Default() }
