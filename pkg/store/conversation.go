package store

import (
	"context"
	"errors"
	"fmt"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/mongo"

	"easychat/pkg/domain"
)

// conversation returns the document of conversation id brought up to date
// (seq 0 if it has no message yet).
func (s *Store) conversation(ctx context.Context, id string) (convDoc, error) {
	c := convDoc{ID: id}
	err := s.db.Collection(Conversation).FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Decode(&c)
	if err != nil && !errors.Is(err, mongo.ErrNoDocuments) {
		return convDoc{}, fmt.Errorf("reading conversation %s: %w", id, err)
	}
	if _, err := s.catchUp(ctx, &c, true); err != nil { // the document is a hint
		return convDoc{}, err
	}
	return c, nil
}

// Summaries returns the summary of each of convs, read by _id: each
// conversation's document, and the claims it trails by (at most
// hintMaxLag).
func (s *Store) Summaries(ctx context.Context, convs []string) (map[string]domain.Summary, error) {
	found := make([]domain.Summary, len(convs))
	err := parallel(len(convs), func(k int) error {
		c, err := s.conversation(ctx, convs[k])
		if err != nil {
			return err
		}
		found[k] = domain.Summary{Seq: c.Seq, LastMsg: c.LastMsg, UpdatedAt: c.UpdatedAt, Sent: c.Sent, Mentioned: c.Mention}
		return nil
	})
	if err != nil {
		return nil, err
	}
	out := make(map[string]domain.Summary, len(convs))
	for k, c := range convs {
		out[c] = found[k]
	}
	return out, nil
}

// Positions returns the positions named by keys, read by _id.
func (s *Store) Positions(ctx context.Context, keys []domain.PositionKey) (map[domain.PositionKey]domain.Position, error) {
	found := make([]domain.Position, len(keys))
	err := parallel(len(keys), func(k int) error {
		p, err := s.Position(ctx, keys[k].User, keys[k].Conversation)
		found[k] = p
		return err
	})
	if err != nil {
		return nil, err
	}
	out := make(map[domain.PositionKey]domain.Position, len(keys))
	for k, key := range keys {
		out[key] = found[k]
	}
	return out, nil
}
