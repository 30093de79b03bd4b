// Package embedded runs the infrastructure of the one-command stack inside the
// process: Kafka (kfake), a Mongo-compatible server (FerretDB on SQLite, or on
// PostgreSQL when asked), Redis (miniredis) and an S3-compatible object store
// (gofakes3). Each speaks the real wire
// protocol, so components use their production clients against them.
package embedded

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/FerretDB/FerretDB/ferretdb"
	"github.com/alicebob/miniredis/v2"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3bolt"
	"github.com/twmb/franz-go/pkg/kfake"
	bolt "go.etcd.io/bbolt"
)

// Kafka is an in-process Kafka cluster.
type Kafka struct {
	c *kfake.Cluster
}

// StartKafka starts a one-broker cluster on addr ("127.0.0.1:0" for any port)
// with topics pre-created with partitions each. With dataDir set, records and
// committed offsets survive a restart.
func StartKafka(addr, dataDir string, partitions int32, topics ...string) (*Kafka, error) {
	_, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("kafka address %q: %w", addr, err)
	}
	var port int
	fmt.Sscan(portStr, &port)
	opts := []kfake.Opt{
		kfake.NumBrokers(1),
		kfake.Ports(port),
		kfake.AllowAutoTopicCreation(),
		kfake.DefaultNumPartitions(int(partitions)),
		kfake.SeedTopics(partitions, topics...),
		// Consumer groups rebalance in about a second instead of kfake's 6 s floor.
		kfake.GroupMinSessionTimeout(time.Second),
	}
	if dataDir != "" {
		if err := os.MkdirAll(dataDir, 0o755); err != nil {
			return nil, fmt.Errorf("creating kafka data dir: %w", err)
		}
		opts = append(opts, kfake.DataDir(dataDir))
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		return nil, fmt.Errorf("starting kafka: %w", err)
	}
	return &Kafka{c: c}, nil
}

// Brokers is the bootstrap address list.
func (k *Kafka) Brokers() string { return k.c.ListenAddrs()[0] }

// Close stops the cluster.
func (k *Kafka) Close() { k.c.Close() }

// Mongo is an in-process FerretDB.
type Mongo struct {
	f      *ferretdb.FerretDB
	cancel context.CancelFunc
	done   chan struct{}
	uri    string
}

// StartMongo serves the MongoDB protocol on addr. With pgURL empty it stores
// data in SQLite files under dataDir; otherwise in that PostgreSQL database.
func StartMongo(ctx context.Context, addr, dataDir, pgURL string, logger *slog.Logger) (*Mongo, error) {
	cfg := &ferretdb.Config{
		Listener: ferretdb.ListenerConfig{TCP: addr},
		Logger:   lazy(logger),
	}
	if pgURL != "" {
		cfg.Handler, cfg.PostgreSQLURL = "postgresql", pgURL
	} else {
		abs, err := filepath.Abs(dataDir)
		if err != nil {
			return nil, fmt.Errorf("mongo data dir: %w", err)
		}
		if err := os.MkdirAll(abs, 0o755); err != nil {
			return nil, fmt.Errorf("creating mongo data dir: %w", err)
		}
		// A directory URI: SQLite's in-memory mode hangs under FerretDB 1.24.
		// synchronous=normal: in WAL mode a commit is not fsynced (a power
		// loss may lose the last commits, a process crash loses nothing);
		// the fsync per commit was half of a chat's latency in the dev stack.
		// temp_store=memory: statement journals (one per insert of a batch)
		// spill to memory, not to temporary files; they were an eighth of
		// the dev stack's insert time at 3,000 msg/s.
		// mmap_size: pages are read through a memory map, not a read(2)
		// each: once the store outgrows SQLite's page cache, every index
		// lookup of a write or a read would otherwise be system calls.
		cfg.Handler, cfg.SQLiteURL = "sqlite", "file:"+abs+"/?_pragma=synchronous(normal)&_pragma=temp_store(memory)&_pragma=mmap_size(4294967296)"
	}
	f, err := ferretdb.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("starting ferretdb: %w", err)
	}
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	m := &Mongo{f: f, cancel: cancel, done: make(chan struct{})}
	var indexer chan struct{}
	if pgURL == "" {
		// See sqliteindex.go: without this every _id lookup scans its table.
		indexer = make(chan struct{})
		dir, _ := filepath.Abs(dataDir)
		go func() {
			defer close(indexer)
			runIDPathIndexer(runCtx, dir, logger)
		}()
	}
	go func() {
		defer close(m.done)
		_ = f.Run(runCtx)
		if indexer != nil {
			<-indexer
		}
	}()
	// MongoDBURI needs the listener to be up, which Run does.
	uriC := make(chan string, 1)
	go func() { uriC <- f.MongoDBURI() }()
	select {
	case m.uri = <-uriC:
	case <-time.After(30 * time.Second):
		cancel()
		return nil, fmt.Errorf("ferretdb did not start listening on %s", addr)
	}
	return m, nil
}

// URI is the mongodb:// connection string.
func (m *Mongo) URI() string { return m.uri }

// Close stops FerretDB and waits for it.
func (m *Mongo) Close() {
	m.cancel()
	<-m.done
}

// Redis is an in-process Redis-protocol server.
type Redis struct {
	m    *miniredis.Miniredis
	stop chan struct{}
}

// StartRedis serves the Redis protocol on addr ("127.0.0.1:0" for any port).
func StartRedis(addr string) (*Redis, error) {
	m := miniredis.NewMiniRedis()
	if err := m.StartAddr(addr); err != nil {
		return nil, fmt.Errorf("starting redis on %s: %w", addr, err)
	}
	r := &Redis{m: m, stop: make(chan struct{})}
	// miniredis only expires keys when its clock is moved; move it with the
	// wall clock so TTL-based routes and presence behave as on a real server.
	// Each move visits (and sorts) every key, so it happens once a second:
	// TTLs here are seconds or more, and at ten moves a second a store of a
	// few hundred thousand keys (routes, list cache) cost a core.
	go func() {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		last := time.Now()
		for {
			select {
			case <-r.stop:
				return
			case now := <-t.C:
				m.FastForward(now.Sub(last))
				last = now
			}
		}
	}()
	return r, nil
}

// URL is the redis:// URL.
func (r *Redis) URL() string { return "redis://" + r.m.Addr() + "/0" }

// Close stops the server.
func (r *Redis) Close() {
	close(r.stop)
	r.m.Close()
}

// Restart drops every connection and all data and listens again on the same
// address: a Redis without persistence coming back after a crash.
func (r *Redis) Restart() error {
	r.m.Close()
	r.m.FlushAll()
	if err := r.m.Restart(); err != nil {
		return fmt.Errorf("restarting redis: %w", err)
	}
	return nil
}

// S3 is an in-process S3-compatible server (gofakes3) keeping objects in a
// bolt file, so uploads survive a restart of the stack.
type S3 struct {
	srv *http.Server
	ln  net.Listener
	db  *bolt.DB
}

// StartS3 serves the S3 API on addr ("127.0.0.1:0" for any port) with bucket
// created, storing under dataDir. It takes any credentials: the dev stack
// still gives every component generated ones, as production needs.
func StartS3(addr, dataDir, bucket string) (*S3, error) {
	if err := os.MkdirAll(dataDir, 0o755); err != nil {
		return nil, fmt.Errorf("creating s3 data dir: %w", err)
	}
	db, err := bolt.Open(filepath.Join(dataDir, "objects.bolt"), 0o600, &bolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("opening s3 store: %w", err)
	}
	back := s3bolt.New(db)
	if err := back.CreateBucket(bucket); err != nil && !gofakes3.HasErrorCode(err, gofakes3.ErrBucketAlreadyExists) {
		db.Close()
		return nil, fmt.Errorf("creating bucket %s: %w", bucket, err)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("listening for s3 on %s: %w", addr, err)
	}
	srv := &http.Server{Handler: gofakes3.New(back, gofakes3.WithoutVersioning()).Server(), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return &S3{srv: srv, ln: ln, db: db}, nil
}

// Endpoint is the host:port of the S3 API.
func (s *S3) Endpoint() string { return s.ln.Addr().String() }

// Close stops the server and closes its store.
func (s *S3) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = s.srv.Shutdown(ctx)
	_ = s.db.Close()
}
