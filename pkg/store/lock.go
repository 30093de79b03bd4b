package store

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/mongo"
)

// Locks holds one document per lease taken: inserting a document with a
// given _id succeeds for one writer only, on MongoDB and on FerretDB alike,
// which makes it a lock; deleting it releases the lock. A lease names its
// holder and expires, so a holder that crashed blocks the others only until
// then. (Taking over an expired lease deletes it by _id and owner; FerretDB
// applies that as a read and a write, so two waiters doing it in the same
// instant after a crash could both take the lock. It needs a crash and a
// race within milliseconds; a change made twice at once then may lose one of
// its members, as before leases.)
const Locks = "lock"

// lockLease bounds how long a holder may keep a lock: longer than any change
// made under one takes.
const lockLease = 30 * time.Second

type lockDoc struct {
	ID    string `bson:"_id"`
	Owner string `bson:"owner"`
	Until int64  `bson:"until"` // unix ms
}

// lock takes the lock name, waiting (within ctx) while another holds it, and
// returns the function that releases it.
func (s *Store) lock(ctx context.Context, name string) (release func(), err error) {
	locks := s.db.Collection(Locks)
	var b [12]byte
	_, _ = rand.Read(b[:])
	owner := hex.EncodeToString(b[:])
	wait := 2 * time.Millisecond
	for {
		now := time.Now()
		_, err := locks.InsertOne(ctx, lockDoc{ID: name, Owner: owner, Until: now.Add(lockLease).UnixMilli()})
		if err == nil {
			return func() {
				// Released even when the caller's context has ended.
				rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
				defer cancel()
				_, _ = locks.DeleteOne(rctx, bson.D{{Key: "_id", Value: name}, {Key: "owner", Value: owner}})
			}, nil
		}
		if !isDup(err) {
			return nil, fmt.Errorf("taking lock %s: %w", name, err)
		}
		var held lockDoc
		err = locks.FindOne(ctx, bson.D{{Key: "_id", Value: name}}).Decode(&held)
		switch {
		case errors.Is(err, mongo.ErrNoDocuments):
			continue // released meanwhile
		case err != nil:
			return nil, fmt.Errorf("reading lock %s: %w", name, err)
		case held.Until < now.UnixMilli():
			// Its holder is gone: take the lease over. The owner in the
			// filter keeps us from deleting a newer holder's lease.
			if _, err := locks.DeleteOne(ctx, bson.D{{Key: "_id", Value: name}, {Key: "owner", Value: held.Owner}}); err != nil {
				return nil, fmt.Errorf("expiring lock %s: %w", name, err)
			}
			continue
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("waiting for lock %s: %w", name, ctx.Err())
		case <-t.C:
		}
		wait = min(2*wait, 50*time.Millisecond)
	}
}
