// Package store keeps chat state in MongoDB (or a Mongo-compatible server such
// as FerretDB): the chat log, per-conversation sequence numbers, conversations
// and groups. It relies only on what FerretDB supports too: unique _id and
// unique indexes, plain indexes; no transactions. FerretDB applies an update
// as a read and then a write, so where writers may race the store inserts or
// deletes whole documents (seq claims, group members), treats what it updates
// as a hint it can rebuild (the conversation document), or has one writer at
// a time (read positions).
package store

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/mongo"
	"go.mongodb.org/mongo-driver/mongo/options"

	"easychat/pkg/reject"
)

// Collection names.
const (
	ChatLog = "chat_log"
	// SeqClaim holds one document per (conversation, seq), naming the
	// message that holds it (see SaveChats); it lives in the database named
	// with ClaimsDBSuffix. The seq's lock is chat_log's unique
	// (conversationId, seq) index, not this.
	SeqClaim = "seq_claim"
	// ClaimsDBSuffix names seq_claim's database: the store's plus this.
	ClaimsDBSuffix = "_seq"
	Conversation   = "conversation"
	Groups         = "groups"
)

// ErrNotFound is returned when a looked-up document does not exist; it is
// reject's kind so callers answer 404 without knowing the store.
var ErrNotFound = reject.ErrNotFound

// Store is the Mongo-backed chat state.
type Store struct {
	client *mongo.Client
	db     *mongo.Database
	// claimsDB holds seq_claim (see SaveChats). A database of its own: on
	// FerretDB's SQLite backend that is a file with its own write lock, so
	// claims and messages are written in parallel.
	claimsDB *mongo.Database
	tops     topCache
	// writeMu and claimsMu serialize this process's chat writes to db and
	// claimsDB: SQLite (FerretDB's embedded backend) has one writer per
	// file at a time, and writers that find the lock taken sleep in growing
	// steps, which under load cost far more than waiting in turn here.
	writeMu, claimsMu sync.Mutex
	// writer groups concurrent inserts into chat_log and seq_claim.
	writer *groupWriter
	// recent holds the messages this process stored last, per
	// conversation, for sealing pages (pages.go).
	recent recentCache
}

// Open connects to uri and uses database name; it pings before returning.
// extra options apply after the store's own (tests attach a command monitor).
func Open(ctx context.Context, uri, name string, extra ...*options.ClientOptions) (*Store, error) {
	opts := options.Client().ApplyURI(uri).
		SetServerSelectionTimeout(5 * time.Second).
		SetConnectTimeout(5 * time.Second)
	client, err := mongo.Connect(ctx, append([]*options.ClientOptions{opts}, extra...)...)
	if err != nil {
		return nil, fmt.Errorf("connecting to mongo: %w", err)
	}
	if err := client.Ping(ctx, nil); err != nil {
		_ = client.Disconnect(context.Background())
		return nil, fmt.Errorf("pinging mongo: %w", err)
	}
	s := &Store{client: client, db: client.Database(name), claimsDB: client.Database(name + ClaimsDBSuffix)}
	s.writer = &groupWriter{logs: s.db.Collection(ChatLog), claims: s.claimsDB.Collection(SeqClaim),
		logLock: &s.writeMu, claimLock: &s.claimsMu}
	return s, nil
}

// Close disconnects.
func (s *Store) Close(ctx context.Context) error { return s.client.Disconnect(ctx) }

// DB exposes the database for tests and tools.
func (s *Store) DB() *mongo.Database { return s.db }

// EnsureIndexes creates the indexes the store relies on and moves data kept
// by earlier versions into today's shape. Idempotent.
func (s *Store) EnsureIndexes(ctx context.Context) error {
	if err := s.ensureChatLogIndex(ctx); err != nil {
		return err
	}
	if err := s.ensureUploadIndex(ctx); err != nil {
		return err
	}
	return s.migrateLists(ctx)
}

// ensureChatLogIndex makes chat_log's (conversationId, seq) index unique: it
// is what makes a seq go to one message (see SaveChats). Earlier versions
// created it non-unique under the same name; such an index is replaced.
func (s *Store) ensureChatLogIndex(ctx context.Context) error {
	idx := s.db.Collection(ChatLog).Indexes()
	keys := bson.D{{Key: "conversationId", Value: 1}, {Key: "seq", Value: 1}}
	const name = "conversationId_1_seq_1"
	cur, err := idx.List(ctx)
	var ce mongo.CommandError
	if errors.As(err, &ce) && ce.Code == 26 { // NamespaceNotFound: no collection yet
		cur, err = nil, nil
	}
	if err != nil {
		return fmt.Errorf("listing chat_log indexes: %w", err)
	}
	var have []struct {
		Name   string `bson:"name"`
		Unique bool   `bson:"unique"`
	}
	if cur != nil {
		if err := cur.All(ctx, &have); err != nil {
			return fmt.Errorf("listing chat_log indexes: %w", err)
		}
	}
	for _, h := range have {
		if h.Name != name {
			continue
		}
		if h.Unique {
			return nil
		}
		if _, err := idx.DropOne(ctx, name); err != nil {
			return fmt.Errorf("dropping the non-unique chat_log index: %w", err)
		}
	}
	_, err = idx.CreateOne(ctx, mongo.IndexModel{Keys: keys, Options: options.Index().SetName(name).SetUnique(true)})
	if err != nil {
		return fmt.Errorf("creating chat_log index: %w", err)
	}
	return nil
}

// findByID decodes the document with _id id; ErrNotFound if there is none.
func findByID[T any](ctx context.Context, c *mongo.Collection, id, what string) (T, error) {
	var v T
	err := c.FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Decode(&v)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return v, ErrNotFound
	}
	if err != nil {
		return v, fmt.Errorf("reading %s %s: %w", what, id, err)
	}
	return v, nil
}

func isDup(err error) bool { return mongo.IsDuplicateKeyError(err) }
