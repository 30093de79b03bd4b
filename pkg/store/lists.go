package store

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/mongo"
	"go.mongodb.org/mongo-driver/mongo/options"

	"easychat/pkg/domain"
	"easychat/pkg/frame"
)

// A user's conversation list is read by _id only, whatever the store holds.
// Its truth is an append-only log per user: ListLog holds "<user>#<n>" for
// n = 1, 2, … each naming a conversation the user joined or left, taken by
// insert (a unique _id, so concurrent writers each get their own n, as with
// seq claims). ListHint holds, per user, the list the log amounted to up to
// some n: a reader reads it, then the entries after it (galloping to the
// last), and writes it back when it trailed. Writers only insert, so a
// single chat's first message or a large group's creation costs one insert
// per user and no read-modify-write of a shared document (which FerretDB
// would apply as a read and then a write, losing racing changes).
const (
	ListLog  = "user_list_log"
	ListHint = "user_list"
)

type listLogDoc struct {
	ID               string `bson:"_id"`
	domain.ListEntry `bson:",inline"`
}

type hintDoc struct {
	ID      string             `bson:"_id"`
	N       int64              `bson:"n"`
	Entries []domain.ListEntry `bson:"e"`
}

func listLogID(user string, n int64) string { return user + "#" + strconv.FormatInt(n, 10) }

// listRewriteLag is how far a list hint may trail its log before a reader
// writes it back.
const listRewriteLag = 8

// AddToLists puts e on the list of each of users (joined a group, or a
// single chat's first message); it is a no-op for a user who has it.
func (s *Store) AddToLists(ctx context.Context, users []string, e domain.ListEntry) error {
	e.Left = false
	return parallel(len(users), func(k int) error { return s.appendList(ctx, users[k], e) })
}

// RemoveFromLists takes conversation conv off the lists of users (left or
// removed from a group).
func (s *Store) RemoveFromLists(ctx context.Context, users []string, conv string) error {
	return parallel(len(users), func(k int) error {
		return s.appendList(ctx, users[k], domain.ListEntry{ConversationID: conv, Left: true})
	})
}

// appendList appends e to user's log at the first free n.
func (s *Store) appendList(ctx context.Context, user string, e domain.ListEntry) error {
	var h hintDoc
	err := s.db.Collection(ListHint).FindOne(ctx, bson.D{{Key: "_id", Value: user}},
		options.FindOne().SetProjection(bson.D{{Key: "n", Value: 1}})).Decode(&h)
	if err != nil && !errors.Is(err, mongo.ErrNoDocuments) {
		return fmt.Errorf("reading the list of %s: %w", user, err)
	}
	logs := s.db.Collection(ListLog)
	n := h.N
	for range 100 {
		last, err := s.gallopList(ctx, user, n)
		if err != nil {
			return err
		}
		e.At = time.Now().UnixMilli()
		_, err = logs.InsertOne(ctx, listLogDoc{ID: listLogID(user, last+1), ListEntry: e})
		if err == nil {
			return nil
		}
		if !isDup(err) {
			return fmt.Errorf("adding %s to the list of %s: %w", e.ConversationID, user, err)
		}
		n = last + 1 // taken meanwhile: look again from there
	}
	return fmt.Errorf("adding %s to the list of %s: no free entry", e.ConversationID, user)
}

// gallopList returns the last n of user's log at or after known (whose
// entry exists, or is 0).
func (s *Store) gallopList(ctx context.Context, user string, known int64) (int64, error) {
	logs := s.db.Collection(ListLog)
	exists := func(n int64) (bool, error) {
		err := logs.FindOne(ctx, bson.D{{Key: "_id", Value: listLogID(user, n)}},
			options.FindOne().SetProjection(bson.D{{Key: "_id", Value: 1}})).Err()
		if errors.Is(err, mongo.ErrNoDocuments) {
			return false, nil
		}
		if err != nil {
			return false, fmt.Errorf("reading the list of %s: %w", user, err)
		}
		return true, nil
	}
	return gallop(known, exists)
}

// ListOf returns user's conversations: the entries the log amounts to, in
// the order the user joined them.
func (s *Store) ListOf(ctx context.Context, user string) ([]domain.ListEntry, error) {
	var h hintDoc
	err := s.db.Collection(ListHint).FindOne(ctx, bson.D{{Key: "_id", Value: user}}).Decode(&h)
	if err != nil && !errors.Is(err, mongo.ErrNoDocuments) {
		return nil, fmt.Errorf("reading the list of %s: %w", user, err)
	}
	last, err := s.gallopList(ctx, user, h.N)
	if err != nil {
		return nil, err
	}
	if last == h.N {
		return h.Entries, nil
	}
	logs := s.db.Collection(ListLog)
	newer := make([]*listLogDoc, last-h.N)
	err = parallel(len(newer), func(k int) error {
		var d listLogDoc
		err := logs.FindOne(ctx, bson.D{{Key: "_id", Value: listLogID(user, h.N+1+int64(k))}}).Decode(&d)
		if err != nil && !errors.Is(err, mongo.ErrNoDocuments) {
			return fmt.Errorf("reading the list of %s: %w", user, err)
		}
		if err == nil {
			newer[k] = &d
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	entries := h.Entries
	for _, d := range newer {
		if d != nil {
			entries = applyList(entries, d.ListEntry)
		}
	}
	if last-h.N >= listRewriteLag {
		// Best effort: a racing reader may write an older list back, which
		// the next reader catches up from again.
		_, err := s.db.Collection(ListHint).ReplaceOne(ctx, bson.D{{Key: "_id", Value: user}},
			hintDoc{ID: user, N: last, Entries: entries}, options.Replace().SetUpsert(true))
		if err != nil && ctx.Err() == nil {
			return nil, fmt.Errorf("saving the list of %s: %w", user, err)
		}
	}
	return entries, nil
}

// applyList applies a log entry to a list: a join adds the conversation
// (once), a leave removes it.
func applyList(list []domain.ListEntry, e domain.ListEntry) []domain.ListEntry {
	for i, have := range list {
		if have.ConversationID != e.ConversationID {
			continue
		}
		if e.Left {
			return append(list[:i:i], list[i+1:]...)
		}
		list[i] = e // joined again: the newer entry
		return list
	}
	if e.Left {
		return list
	}
	return append(list, e)
}

// gallop returns the highest n above known (or known) for which exists is
// true, assuming it is true from known up to that n and false after:
// probing 1, 2, 4 … ahead, then halving, so that n − known = d costs about
// 2·log2(d) probes.
func gallop(known int64, exists func(int64) (bool, error)) (int64, error) {
	lo, step := known, int64(1)
	var hi int64
	for {
		ok, err := exists(lo + step)
		if err != nil {
			return 0, err
		}
		if !ok {
			hi = lo + step
			break
		}
		lo += step
		step *= 2
	}
	for hi-lo > 1 {
		mid := lo + (hi-lo)/2
		ok, err := exists(mid)
		if err != nil {
			return 0, err
		}
		if ok {
			lo = mid
		} else {
			hi = mid
		}
	}
	return lo, nil
}

// singleEntry is a single chat's list entry.
func singleEntry(conv string) domain.ListEntry {
	return domain.ListEntry{ConversationID: conv, ChatType: frame.SingleChat}
}

// Meta holds one document per migration done, so that each runs once.
const Meta = "meta"

const listsMigration = "lists-v1"

// migrateLists builds the lists of users of earlier versions, which had
// none: every member of every group, and both users of every single chat
// with a message. It reads every group and conversation once, the first
// time a store of this version opens the database; the lists only grow
// from then on. Safe to run from several processes at once (a list that
// names a conversation twice names it once).
func (s *Store) migrateLists(ctx context.Context) error {
	meta := s.db.Collection(Meta)
	err := meta.FindOne(ctx, bson.D{{Key: "_id", Value: listsMigration}}).Err()
	if err == nil {
		return nil
	}
	if !errors.Is(err, mongo.ErrNoDocuments) {
		return fmt.Errorf("reading migrations: %w", err)
	}
	cur, err := s.db.Collection(Groups).Find(ctx, bson.D{})
	if err != nil {
		return fmt.Errorf("listing groups to migrate: %w", err)
	}
	var groups []domain.Group
	if err := cur.All(ctx, &groups); err != nil {
		return fmt.Errorf("decoding groups to migrate: %w", err)
	}
	for _, g := range groups {
		if err := s.AddToLists(ctx, g.Members, domain.ListEntry{ConversationID: g.ID, ChatType: frame.GroupChat, Name: g.Name}); err != nil {
			return err
		}
	}
	cur, err = s.db.Collection(Conversation).Find(ctx, bson.D{{Key: "chatType", Value: frame.SingleChat}},
		options.Find().SetProjection(bson.D{{Key: "members", Value: 1}}))
	if err != nil {
		return fmt.Errorf("listing conversations to migrate: %w", err)
	}
	var convs []convDoc
	if err := cur.All(ctx, &convs); err != nil {
		return fmt.Errorf("decoding conversations to migrate: %w", err)
	}
	for _, c := range convs {
		if err := s.AddToLists(ctx, c.Members, singleEntry(c.ID)); err != nil {
			return err
		}
	}
	if _, err := meta.InsertOne(ctx, bson.D{{Key: "_id", Value: listsMigration}, {Key: "at", Value: time.Now().UnixMilli()}}); err != nil && !isDup(err) {
		return fmt.Errorf("recording the lists migration: %w", err)
	}
	return nil
}
