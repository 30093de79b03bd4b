package store

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/mongo"
	"go.mongodb.org/mongo-driver/mongo/options"

	"easychat/pkg/domain"
)

// Reads of a conversation's messages by seq (history, sync) cost what they
// return, whatever the store holds: every document they read is found by
// its _id, which every backend indexes (FerretDB on SQLite pushes nothing
// else down: a filter on conversationId and seq there reads every message
// of the store). A page reads the sealed pages it spans ("<conversation>#p<k>",
// PageSize messages each; pages.go) and, for the newest messages, not yet in
// a sealed page, their seq claims ("<conversation>#<seq>", which carry the
// message). The newest seq comes from the conversation document and the
// claims after it, found by a galloping search.

// History returns up to limit messages of conv with seq < before (before <= 0:
// from the newest), newest first.
func (s *Store) History(ctx context.Context, conv string, before, limit int64) ([]domain.Message, error) {
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
	return s.bySeq(ctx, conv, seqs, top)
}

// Messages returns up to limit messages of conv with seq > after, oldest first.
func (s *Store) Messages(ctx context.Context, conv string, after int64, limit int64) ([]domain.Message, error) {
	top, err := s.topSeq(ctx, conv)
	if err != nil {
		return nil, err
	}
	var seqs []int64
	for seq := max(after, 0) + 1; seq <= top && int64(len(seqs)) < limit; seq++ {
		seqs = append(seqs, seq)
	}
	return s.bySeq(ctx, conv, seqs, top)
}

// topSeq returns the newest seq of conv: the highest this process has seen
// (seqs only grow) or else its document's seq, then the claims after it,
// probed 1, 2, 4 … ahead and then halved, so that trailing by n messages
// costs about 2·log2(n) lookups, and a conversation paged through costs one.
func (s *Store) topSeq(ctx context.Context, conv string) (int64, error) {
	known := int64(0)
	if t, ok := s.tops.get(conv); ok && t.seq > 0 {
		known = t.seq
	} else {
		d := convDoc{ID: conv}
		err := s.db.Collection(Conversation).FindOne(ctx, bson.D{{Key: "_id", Value: conv}},
			options.FindOne().SetProjection(bson.D{{Key: "seq", Value: 1}})).Decode(&d)
		if err != nil && !errors.Is(err, mongo.ErrNoDocuments) {
			return 0, fmt.Errorf("reading conversation %s: %w", conv, err)
		}
		known = d.Seq
	}
	top, err := s.gallop(ctx, conv, known)
	if err != nil {
		return 0, err
	}
	s.tops.remember(map[string]int64{conv: top})
	return top, nil
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

// bySeq returns the messages of conv at seqs, in that order; top is the
// conversation's newest seq. Seqs in sealed pages (every page below top's
// own) are read a page at a time, the others from their claims, all
// concurrently. A seq that has neither (an attempt that stored the message
// and stopped before its claim, until redelivery repairs it) is skipped.
func (s *Store) bySeq(ctx context.Context, conv string, seqs []int64, top int64) ([]domain.Message, error) {
	found := make(map[int64]*domain.Message, len(seqs))
	var mu sync.Mutex
	sealed := pageOf(top+1) * PageSize // seqs up to here are in complete pages
	var pages []int64
	var loose []int64
	seen := map[int64]bool{}
	for _, seq := range seqs {
		if seq > sealed {
			loose = append(loose, seq)
			continue
		}
		if k := pageOf(seq); !seen[k] {
			seen[k] = true
			pages = append(pages, k)
		}
	}
	want := map[int64]bool{}
	for _, seq := range seqs {
		want[seq] = true
	}
	err := parallelN(len(pages), readParallelism, func(i int) error {
		msgs, err := s.page(ctx, conv, pages[i])
		if err != nil {
			return err
		}
		if msgs == nil { // not sealed: its claims, then
			var ks []int64
			for seq := pages[i]*PageSize + 1; seq <= (pages[i]+1)*PageSize; seq++ {
				if want[seq] {
					ks = append(ks, seq)
				}
			}
			got, err := s.claimsOf(ctx, conv, ks)
			if err != nil {
				return err
			}
			mu.Lock()
			for j, m := range got {
				found[ks[j]] = m
			}
			mu.Unlock()
			return nil
		}
		mu.Lock()
		for j := range msgs {
			if want[msgs[j].Seq] {
				found[msgs[j].Seq] = &msgs[j]
			}
		}
		mu.Unlock()
		return nil
	})
	if err != nil {
		return nil, err
	}
	got, err := s.claimsOf(ctx, conv, loose)
	if err != nil {
		return nil, err
	}
	for j, m := range got {
		found[loose[j]] = m
	}
	out := make([]domain.Message, 0, len(seqs))
	for _, seq := range seqs {
		if m := found[seq]; m != nil {
			out = append(out, *m)
		}
	}
	return out, nil
}

// claimsOf returns the messages at seqs of conv from their claims (nil for a
// seq without one), read concurrently. A claim of an earlier version,
// without its message, leads to the message by msgId.
func (s *Store) claimsOf(ctx context.Context, conv string, seqs []int64) ([]*domain.Message, error) {
	found := make([]*domain.Message, len(seqs))
	claims := s.claimsDB.Collection(SeqClaim)
	err := parallelN(len(seqs), readParallelism, func(k int) error {
		var c claimDoc
		err := claims.FindOne(ctx, bson.D{{Key: "_id", Value: claimID(conv, seqs[k])}}).Decode(&c)
		switch {
		case errors.Is(err, mongo.ErrNoDocuments):
			return nil
		case err != nil:
			return fmt.Errorf("reading %s#%d: %w", conv, seqs[k], err)
		case c.M != nil:
			found[k] = (*domain.Message)(c.M)
			return nil
		}
		m, err := findByID[domain.Message](ctx, s.db.Collection(ChatLog), c.MsgID, "message")
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
	return found, nil
}
