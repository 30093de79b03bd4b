package e2e

import (
	"context"
	"log/slog"
	"os"
	"sync"
	"testing"

	"easychat/devstack/embedded"
	"easychat/pkg/store"
)

// Tests share one Mongo-compatible server per test binary: MONGO_URI when set
// (the CI lane against FerretDB on PostgreSQL or a real MongoDB), else an
// embedded FerretDB on SQLite in a temp dir.
var (
	mongoOnce sync.Once
	mongoURI  string
	mongoErr  error
	mongoDir  string
)

func testMongoURI(t *testing.T) string {
	t.Helper()
	mongoOnce.Do(func() {
		if u := os.Getenv("MONGO_URI"); u != "" {
			mongoURI = u
			return
		}
		mongoDir, mongoErr = os.MkdirTemp("", "easychat-e2e-mongo-")
		if mongoErr != nil {
			return
		}
		var m *embedded.Mongo
		m, mongoErr = embedded.StartMongo(context.Background(), "127.0.0.1:0", mongoDir, os.Getenv("FERRETDB_POSTGRESQL_URL"),
			slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
		if mongoErr == nil {
			mongoURI = m.URI()
		}
	})
	if mongoErr != nil {
		t.Fatalf("starting mongo: %v", mongoErr)
	}
	return mongoURI
}

func openStore(t *testing.T, ctx context.Context) *store.Store {
	t.Helper()
	st, err := store.Open(ctx, testMongoURI(t), "e2e")
	if err != nil {
		t.Fatal(err)
	}
	if err := st.EnsureIndexes(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close(context.Background()) })
	return st
}

func TestMain(m *testing.M) {
	code := m.Run()
	if mongoDir != "" {
		_ = os.RemoveAll(mongoDir)
	}
	os.Exit(code)
}
