// Package deps is a function process's configuration and clients. The
// configuration is read from the environment once, when the process starts,
// and a bad value stops it with a message naming the variable; secrets are
// required when first asked for (at the function's start), so a function
// without its secrets never serves. Clients are built lazily: a replica starts
// (and answers health checks) before Kafka, Mongo or Redis are reachable, and
// recovers when they are.
//
// Environment (defaults in brackets):
//
//	MONGO_URI            [mongodb://127.0.0.1:27017/]
//	MONGO_DB             [easychat]
//	KAFKA_BROKERS        [127.0.0.1:9092]   comma-separated
//	REDIS_URL            [redis://127.0.0.1:6379/0]  routes, nonces of signed calls, rate limits
//	ROUTE_TTL            [30s]   lifetime of a gateway's route entries (as the gateway's)
//	TOKEN_TTL            [168h]  lifetime of issued user tokens
//	LOGIN_LIMIT_USER     [10/5m] login attempts per user id
//	LOGIN_LIMIT_ADDR     [60/5m] login attempts per client address
//	REGISTER_LIMIT_ADDR  [30/1h] registrations per client address
//	GROUP_CREATE_LIMIT   [20/1h] groups a user may create
//	GROUP_ADD_LIMIT      [2000/1h] members a user may add to groups (one full group an hour)
//	GROUP_MAX_MEMBERS    [2000]  members of one group
//	RECALL_WINDOW        [2m]    how long after sending a sender may recall a message
//	EDIT_WINDOW          [15m]   how long after sending a sender may edit a message
//	FILE_MAX_BYTES       [20971520] largest file one may upload (20 MiB)
//	FILE_TYPES           [image/jpeg,image/png,image/gif,image/webp,application/pdf,text/plain,application/zip,application/octet-stream]
//	                             media types accepted, as found in the bytes
//	FILE_LINK_TTL        [10m]   life of an upload or download link
//	FILE_ORPHAN_TTL      [1h]    an upload no message uses is deleted after this
//	FILE_SWEEP_EVERY     [1m]    orphans are looked for at most this often (on uploads)
//	FILE_UPLOAD_LIMIT    [100/1h] uploads a user may ask for
//	FILE_UPLOAD_MIB_LIMIT [2048/24h] MiB a user may upload (each file counted by its declared size)
//	CHANGE_LIMIT         [300/5m] recalls, edits, reactions and hides a user may make
//	S3_ENDPOINT, S3_SECURE, S3_REGION, S3_BUCKET: the file store (package blob)
//
// Rate limits are N/duration, or "off". Secrets: internal-key (INTERNAL_KEY)
// for every function, jwt-secret (JWT_SECRET) for user, s3-access-key and
// s3-secret-key (S3_ACCESS_KEY, S3_SECRET_KEY) for those that touch files;
// see package secret.
package deps

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"easychat/pkg/blob"
	"easychat/pkg/bus"
	"easychat/pkg/envconf"
	"easychat/pkg/filelink"
	"easychat/pkg/files"
	"easychat/pkg/limit"
	"easychat/pkg/listcache"
	"easychat/pkg/nonce"
	"easychat/pkg/push"
	"easychat/pkg/route"
	"easychat/pkg/secret"
	"easychat/pkg/sign"
	"easychat/pkg/store"
	"easychat/pkg/token"
)

// Limits bound what one client may do; see the package doc.
type Limits struct {
	LoginPerUser    limit.Rule
	LoginPerAddr    limit.Rule
	RegisterPerAddr limit.Rule
	GroupCreate     limit.Rule
	GroupAdd        limit.Rule
	GroupMaxMembers int
	FileUpload      limit.Rule
	FileUploadMiB   limit.Rule
	Changes         limit.Rule
}

// FileConfig configures images and files (package files).
type FileConfig struct {
	MaxBytes   int64
	Types      []string
	LinkTTL    time.Duration
	OrphanTTL  time.Duration
	SweepEvery time.Duration
}

// Config is a function's configuration.
type Config struct {
	MongoURI     string
	MongoDB      string
	KafkaBrokers string
	RedisURL     string
	RouteTTL     time.Duration
	TokenTTL     time.Duration
	Limits       Limits
	RecallWindow time.Duration
	EditWindow   time.Duration
	Files        FileConfig
}

// Load reads the configuration from the environment; every bad value is
// reported at once.
func Load() (Config, error) {
	var r envconf.Reader
	c := Config{
		MongoURI:     r.String("MONGO_URI", "mongodb://127.0.0.1:27017/"),
		MongoDB:      r.String("MONGO_DB", "easychat"),
		KafkaBrokers: r.String("KAFKA_BROKERS", "127.0.0.1:9092"),
		RedisURL:     r.String("REDIS_URL", "redis://127.0.0.1:6379/0"),
		RouteTTL:     r.Duration("ROUTE_TTL", 30*time.Second),
		TokenTTL:     r.Duration("TOKEN_TTL", 168*time.Hour),
		RecallWindow: r.Duration("RECALL_WINDOW", 2*time.Minute),
		EditWindow:   r.Duration("EDIT_WINDOW", 15*time.Minute),
	}
	rule := func(key, def string) limit.Rule {
		rl, err := limit.ParseRule(r.String(key, def))
		if err != nil {
			r.Fail(key, err)
		}
		return rl
	}
	c.Limits = Limits{
		LoginPerUser:    rule("LOGIN_LIMIT_USER", "10/5m"),
		LoginPerAddr:    rule("LOGIN_LIMIT_ADDR", "60/5m"),
		RegisterPerAddr: rule("REGISTER_LIMIT_ADDR", "30/1h"),
		GroupCreate:     rule("GROUP_CREATE_LIMIT", "20/1h"),
		GroupAdd:        rule("GROUP_ADD_LIMIT", "2000/1h"),
		GroupMaxMembers: r.Int("GROUP_MAX_MEMBERS", 2000, 2),
		FileUpload:      rule("FILE_UPLOAD_LIMIT", "100/1h"),
		FileUploadMiB:   rule("FILE_UPLOAD_MIB_LIMIT", "2048/24h"),
		Changes:         rule("CHANGE_LIMIT", "300/5m"),
	}
	c.Files = FileConfig{
		MaxBytes:   r.Int64("FILE_MAX_BYTES", files.DefaultMaxBytes, 1),
		Types:      r.List("FILE_TYPES", files.DefaultTypes),
		LinkTTL:    r.Duration("FILE_LINK_TTL", files.DefaultLinkTTL),
		OrphanTTL:  r.Duration("FILE_ORPHAN_TTL", files.DefaultOrphanTTL),
		SweepEvery: r.Duration("FILE_SWEEP_EVERY", files.DefaultSweepEvery),
	}
	if _, err := redis.ParseURL(c.RedisURL); err != nil {
		r.Fail("REDIS_URL", err)
	}
	if err := r.Err(); err != nil {
		return c, fmt.Errorf("function configuration: %w", err)
	}
	return c, nil
}

// fatal stops a function that cannot run as configured. The runtime (the
// local one, or Kubernetes) shows the message and keeps the replica out of
// service.
func fatal(err error) {
	slog.Error("function cannot start", "err", err)
	os.Exit(2)
}

var cfg = func() Config {
	c, err := Load()
	if err != nil {
		fatal(err)
	}
	return c
}()

// Settings returns the configuration read at start.
func Settings() Config { return cfg }

// Lazy builds a value on first use and retries after a failure, so a
// function that starts before Kafka or Mongo recovers by itself.
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

var (
	stores = NewLazy(func() (*store.Store, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		st, err := store.Open(ctx, cfg.MongoURI, cfg.MongoDB)
		if err != nil {
			return nil, err
		}
		if err := st.EnsureIndexes(ctx); err != nil {
			return nil, err
		}
		return st, nil
	})
	producers = NewLazy(func() (*bus.Producer, error) { return bus.NewProducer(cfg.KafkaBrokers), nil })
	// The URL was checked at start; the client connects on first use.
	rdb = sync.OnceValue(func() *redis.Client {
		opt, _ := redis.ParseURL(cfg.RedisURL)
		return redis.NewClient(opt)
	})
)

// Store is the Mongo store (MONGO_URI, MONGO_DB).
func Store() (*store.Store, error) { return stores.Get() }

// Producer is the Kafka producer (KAFKA_BROKERS).
func Producer() (*bus.Producer, error) { return producers.Get() }

// Redis is the Redis client (REDIS_URL).
func Redis() *redis.Client { return rdb() }

// Routes is the route registry (REDIS_URL, ROUTE_TTL).
func Routes() *route.Redis { return route.NewRedis(Redis(), cfg.RouteTTL) }

// ListCache holds what conversation lists show, in Redis (package listcache).
func ListCache() *listcache.Redis { return listcache.New(Redis()) }

// Limiter counts rate limits in Redis, shared by every replica.
func Limiter() *limit.Redis { return limit.NewRedis(Redis()) }

// Signer signs and verifies calls between components with the internal-key
// secret, refusing replayed calls through Redis. A function without the
// secret stops here, at its start.
var Signer = sync.OnceValue(func() *sign.Signer {
	return sign.New(internalKey()).WithReplays(nonce.NewRedis(Redis()))
})

var internalKey = sync.OnceValue(func() string {
	key, err := secret.Require(secret.Internal, "INTERNAL_KEY", sign.DevKey)
	if err != nil {
		fatal(err)
	}
	return key
})

// Pusher posts to gateways, signed with the internal key. One client per
// process, so connections to the gateways are reused across invocations.
var Pusher = sync.OnceValue(func() *push.Client { return push.NewClient(Signer()) })

// Tokens issues user tokens (secret jwt-secret or JWT_SECRET; TOKEN_TTL). A
// function without the secret stops here.
func Tokens() *token.Issuer {
	key, err := secret.Require(secret.JWT, "JWT_SECRET", token.DevSecret)
	if err != nil {
		fatal(err)
	}
	return token.New(key, cfg.TokenTTL)
}

// blobs is the file store; its credentials are required when first used
// (by the functions that touch files), and an error, not a stop, if missing:
// a chat function without them still carries text.
var blobs = NewLazy(func() (blob.Store, error) {
	var r envconf.Reader
	c, err := blob.ConfigFromEnv(&r)
	if err = errors.Join(err, r.Err()); err != nil {
		return nil, fmt.Errorf("file store configuration: %w", err)
	}
	return blob.NewS3(c)
})

// Blobs is the file store (S3_*, secrets s3-access-key, s3-secret-key).
func Blobs() (blob.Store, error) { return blobs.Get() }

// Files is the file service, for the file, chat and transfer functions.
func Files() (*files.Service, error) {
	st, err := Store()
	if err != nil {
		return nil, err
	}
	b, err := Blobs()
	if err != nil {
		return nil, err
	}
	f := cfg.Files
	return &files.Service{Uploads: st, Blobs: b, Groups: st, Links: filelink.New(internalKey()),
		Limiter: Limiter(), UploadLimit: cfg.Limits.FileUpload, UploadMiB: cfg.Limits.FileUploadMiB, Log: Log(),
		MaxBytes: f.MaxBytes, Types: f.Types, LinkTTL: f.LinkTTL, OrphanTTL: f.OrphanTTL, SweepEvery: f.SweepEvery}, nil
}

// Log is the function's logger.
func Log() *slog.Logger { return slog.Default() }
