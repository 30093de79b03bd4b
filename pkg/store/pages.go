package store

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/mongo"
	"go.mongodb.org/mongo-driver/mongo/options"

	"easychat/pkg/domain"
)

// SeqPage holds sealed pages of conversations: once a conversation has
// stored every seq of page k (seqs k·PageSize+1 … (k+1)·PageSize), the
// writer that stored the last of them inserts "<conversation>#p<k>" with
// the page's messages. A page never changes, so it is inserted once (a
// duplicate insert is a page already sealed) and read by _id: a page of
// history costs one lookup per sealed page it spans plus one per message of
// the newest, unsealed page, instead of one per message. A page that is not
// there (its writer stopped first) is read from the claims, as the tail is.
const SeqPage = "seq_page"

// PageSize is the number of messages of a sealed page.
const PageSize = 16

type pageDoc struct {
	ID   string    `bson:"_id"`
	Msgs []compact `bson:"m"`
}

func pageID(conv string, k int64) string { return conv + "#p" + strconv.FormatInt(k, 10) }

// pageOf is the page holding seq (seq >= 1).
func pageOf(seq int64) int64 { return (seq - 1) / PageSize }

// recentCache keeps, per conversation, the messages this process stored
// last (up to a page's worth), so that sealing a page rarely reads back
// what the same process just wrote.
type recentCache struct {
	mu sync.Mutex
	m  map[string][]domain.Message // conversation → messages in seq order, the newest PageSize
}

const recentMaxConvs = 10_000

func (r *recentCache) add(msgs []domain.Message) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.m == nil || len(r.m) > recentMaxConvs {
		r.m = map[string][]domain.Message{}
	}
	for _, m := range msgs {
		l := r.m[m.ConversationID]
		if n := len(l); n > 0 && l[n-1].Seq >= m.Seq {
			continue // a redelivery, or older
		}
		l = append(l, m)
		if len(l) > PageSize {
			l = append([]domain.Message(nil), l[len(l)-PageSize:]...)
		}
		r.m[m.ConversationID] = l
	}
}

// revise replaces the copy of m, if there is one.
func (r *recentCache) revise(m domain.Message) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i, c := range r.m[m.ConversationID] {
		if c.Seq == m.Seq {
			r.m[m.ConversationID][i] = m
		}
	}
}

func (r *recentCache) get(conv string, seq int64) (domain.Message, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, m := range r.m[conv] {
		if m.Seq == seq {
			return m, true
		}
	}
	return domain.Message{}, false
}

// sealPages inserts the pages that stored messages completed: for each
// conversation, the pages whose last seq is among them.
func (s *Store) sealPages(ctx context.Context, stored []domain.Message) error {
	// A page's messages come from this batch (which may hold many pages),
	// then from the newest ones stored before it.
	type key struct {
		conv string
		seq  int64
	}
	var batch map[key]domain.Message
	for _, m := range stored {
		if m.Seq%PageSize == 0 {
			batch = make(map[key]domain.Message, len(stored))
			break
		}
	}
	for _, m := range stored {
		if batch != nil {
			batch[key{m.ConversationID, m.Seq}] = m
		}
	}
	defer s.recent.add(stored)
	var docs []any
	for _, m := range stored {
		if m.Seq%PageSize != 0 {
			continue
		}
		k := pageOf(m.Seq)
		msgs := make([]domain.Message, PageSize)
		var missing []int
		for i := range msgs {
			seq := k*PageSize + int64(i) + 1
			if r, ok := batch[key{m.ConversationID, seq}]; ok {
				msgs[i] = r
			} else if r, ok := s.recent.get(m.ConversationID, seq); ok {
				msgs[i] = r
			} else {
				missing = append(missing, i)
			}
		}
		if len(missing) > 0 {
			seqs := make([]int64, len(missing))
			for j, i := range missing {
				seqs[j] = k*PageSize + int64(i) + 1
			}
			got, err := s.claimsOf(ctx, m.ConversationID, seqs)
			if err != nil {
				return err
			}
			for j, i := range missing {
				if got[j] == nil {
					// Not claimed yet (a racing writer's): the page stays
					// unsealed and is read from its claims.
					msgs = nil
					break
				}
				msgs[i] = *got[j]
			}
		}
		if msgs != nil {
			d := pageDoc{ID: pageID(m.ConversationID, k), Msgs: make([]compact, len(msgs))}
			for i := range msgs {
				d.Msgs[i] = compact(msgs[i])
			}
			docs = append(docs, d)
		}
	}
	if len(docs) == 0 {
		return nil
	}
	s.claimsMu.Lock()
	_, err := s.claimsDB.Collection(SeqPage).InsertMany(ctx, docs, options.InsertMany().SetOrdered(false))
	s.claimsMu.Unlock()
	var bw mongo.BulkWriteException
	if errors.As(err, &bw) && bw.WriteConcernError == nil {
		for _, we := range bw.WriteErrors {
			if !mongo.IsDuplicateKeyError(we) {
				return fmt.Errorf("sealing pages: %w", err)
			}
		}
		// Sealed already, or a placeholder a change of one of its messages
		// left (change.go): the copies here may be older than the change.
		for _, we := range bw.WriteErrors {
			conv, k := pageKey(docs[we.Index].(pageDoc).ID)
			if err := s.resealFromClaims(ctx, conv, k); err != nil {
				return err
			}
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("sealing pages: %w", err)
	}
	return nil
}

// page returns the messages of sealed page k of conv, or nil if it is not
// sealed.
func (s *Store) page(ctx context.Context, conv string, k int64) ([]domain.Message, error) {
	var d pageDoc
	err := s.claimsDB.Collection(SeqPage).FindOne(ctx, bson.D{{Key: "_id", Value: pageID(conv, k)}}).Decode(&d)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading page %s: %w", pageID(conv, k), err)
	}
	if len(d.Msgs) != PageSize {
		return nil, nil // not a page of this size: read the claims
	}
	msgs := make([]domain.Message, len(d.Msgs))
	for i := range d.Msgs {
		msgs[i] = domain.Message(d.Msgs[i])
	}
	return msgs, nil
}
