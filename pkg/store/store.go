// Package store keeps chat state in MongoDB (or a Mongo-compatible server such
// as FerretDB): the chat log, per-conversation sequence numbers, conversations
// and groups. It relies only on what FerretDB supports too: unique _id, plain
// indexes, single-document atomic updates; no transactions.
package store

import (
	"context"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/mongo"
	"go.mongodb.org/mongo-driver/mongo/options"

	"easychat/pkg/reject"
)

// Collection names.
const (
	ChatLog      = "chat_log"
	SeqClaim     = "seq_claim"
	Conversation = "conversation"
	Groups       = "groups"
)

// ErrNotFound is returned when a looked-up document does not exist; it is
// reject's kind so callers answer 404 without knowing the store.
var ErrNotFound = reject.ErrNotFound

// Store is the Mongo-backed chat state.
type Store struct {
	client *mongo.Client
	db     *mongo.Database
}

// Open connects to uri and uses database name; it pings before returning.
func Open(ctx context.Context, uri, name string) (*Store, error) {
	opts := options.Client().ApplyURI(uri).
		SetServerSelectionTimeout(5 * time.Second).
		SetConnectTimeout(5 * time.Second)
	client, err := mongo.Connect(ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("connecting to mongo: %w", err)
	}
	if err := client.Ping(ctx, nil); err != nil {
		_ = client.Disconnect(context.Background())
		return nil, fmt.Errorf("pinging mongo: %w", err)
	}
	return &Store{client: client, db: client.Database(name)}, nil
}

// Close disconnects.
func (s *Store) Close(ctx context.Context) error { return s.client.Disconnect(ctx) }

// DB exposes the database for tests and tools.
func (s *Store) DB() *mongo.Database { return s.db }

// EnsureIndexes creates the secondary indexes reads rely on. Idempotent.
func (s *Store) EnsureIndexes(ctx context.Context) error {
	_, err := s.db.Collection(ChatLog).Indexes().CreateOne(ctx, mongo.IndexModel{
		Keys: bson.D{{Key: "conversationId", Value: 1}, {Key: "seq", Value: 1}},
	})
	if err != nil {
		return fmt.Errorf("creating chat_log index: %w", err)
	}
	return nil
}

func isDup(err error) bool { return mongo.IsDuplicateKeyError(err) }
