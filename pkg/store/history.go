package store

import (
	"context"
	"errors"
	"fmt"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/mongo"
	"go.mongodb.org/mongo-driver/mongo/options"
)

// Reads of a conversation's messages by seq (history, sync) cost what they
// return, whatever the store holds: every document they read is found by
// its _id, which every backend indexes (FerretDB on SQLite pushes nothing
// else down: a filter on conversationId and seq there reads every message
// of the store). A page is one point lookup per message: the seq claim
// "<conversation>#<seq>", which carries the message. The newest seq comes
// from the conversation document and the claims after it, found by a
// galloping search.

// History returns up to limit messages of conv with seq < before (before <= 0:
// from the newest), newest first.
func (s *Store) History(ctx context.Context, conv string, before, limit int64) ([]Message, error) {
	top, err := s.topSeq(ctx, conv)
	if err != nil {
		return nil, err
	}
	hi := top
	if before > 0 {
		hi = min(hi, before-1)
	}
	var seqs []int64
	for seq := hi; seq >= 1 && int64(len(seqs)) < limit; seq-- {
		seqs = append(seqs, seq)
	}
	return s.bySeq(ctx, conv, seqs)
}

// Messages returns up to limit messages of conv with seq > after, oldest first.
func (s *Store) Messages(ctx context.Context, conv string, after int64, limit int64) ([]Message, error) {
	top, err := s.topSeq(ctx, conv)
	if err != nil {
		return nil, err
	}
	var seqs []int64
	for seq := max(after, 0) + 1; seq <= top && int64(len(seqs)) < limit; seq++ {
		seqs = append(seqs, seq)
	}
	return s.bySeq(ctx, conv, seqs)
}

// topSeq returns the newest seq of conv: its document's seq, then the
// claims after it, probed 1, 2, 4 … ahead and then halved, so that a
// document trailing by n messages costs about 2·log2(n) lookups.
func (s *Store) topSeq(ctx context.Context, conv string) (int64, error) {
	d := convDoc{ID: conv}
	err := s.db.Collection(Conversation).FindOne(ctx, bson.D{{Key: "_id", Value: conv}},
		options.FindOne().SetProjection(bson.D{{Key: "seq", Value: 1}})).Decode(&d)
	if err != nil && !errors.Is(err, mongo.ErrNoDocuments) {
		return 0, fmt.Errorf("reading conversation %s: %w", conv, err)
	}
	return s.gallop(ctx, conv, d.Seq)
}

// gallop returns the highest seq above known (or known) whose claim exists,
// assuming the claims after known are contiguous, as writers make them.
func (s *Store) gallop(ctx context.Context, conv string, known int64) (int64, error) {
	return gallop(known, func(seq int64) (bool, error) { return s.claimed(ctx, conv, seq) })
}

// claimed reports whether seq of conv has a claim.
func (s *Store) claimed(ctx context.Context, conv string, seq int64) (bool, error) {
	err := s.claimsDB.Collection(SeqClaim).FindOne(ctx, bson.D{{Key: "_id", Value: claimID(conv, seq)}},
		options.FindOne().SetProjection(bson.D{{Key: "_id", Value: 1}})).Err()
	if errors.Is(err, mongo.ErrNoDocuments) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("reading the claim of %s#%d: %w", conv, seq, err)
	}
	return true, nil
}

// bySeq returns the messages of conv at seqs, in that order, read from their
// claims concurrently. A claim of an earlier version, without its message,
// leads to the message by msgId; a seq with no claim (an attempt that stored
// the message and was interrupted before its claim, until redelivery
// repairs it) is skipped.
func (s *Store) bySeq(ctx context.Context, conv string, seqs []int64) ([]Message, error) {
	found := make([]*Message, len(seqs))
	claims := s.claimsDB.Collection(SeqClaim)
	err := parallel(len(seqs), func(k int) error {
		var c claimDoc
		err := claims.FindOne(ctx, bson.D{{Key: "_id", Value: claimID(conv, seqs[k])}}).Decode(&c)
		switch {
		case errors.Is(err, mongo.ErrNoDocuments):
			return nil
		case err != nil:
			return fmt.Errorf("reading %s#%d: %w", conv, seqs[k], err)
		case c.M != nil:
			found[k] = c.M
			return nil
		}
		m, err := findByID[Message](ctx, s.db.Collection(ChatLog), c.MsgID, "message")
		if errors.Is(err, ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		found[k] = &m
		return nil
	})
	if err != nil {
		return nil, err
	}
	out := make([]Message, 0, len(seqs))
	for _, m := range found {
		if m != nil {
			out = append(out, *m)
		}
	}
	return out, nil
}
