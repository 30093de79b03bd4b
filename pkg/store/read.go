package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/mongo"

	"easychat/pkg/domain"
)

// UserConversation is the user_conversation collection: one document per
// (user, conversation) holding how far the user has read. A message is read
// by a member iff its seq <= that member's readSeq, which is exact for groups
// of any size (no per-message member sets, no hashed bitmaps).
const UserConversation = "user_conversation"

type readDoc struct {
	ID             string `bson:"_id"`
	UserID         string `bson:"userId"`
	ConversationID string `bson:"conversationId"`
	ReadSeq        int64  `bson:"readSeq"`
	DeliveredSeq   int64  `bson:"deliveredSeq"`
	UpdatedAt      int64  `bson:"updatedAt"`
}

func readID(user, conv string) string { return user + "#" + conv }

// MarkRead advances user's read position in conv to seq (never backwards)
// and returns the position after the call.
func (s *Store) MarkRead(ctx context.Context, user, conv string, seq int64) (int64, error) {
	return s.advance(ctx, "readSeq", user, conv, seq)
}

// MarkDelivered advances how far user's devices have received conv (never
// backwards) and returns the position after the call.
func (s *Store) MarkDelivered(ctx context.Context, user, conv string, seq int64) (int64, error) {
	return s.advance(ctx, "deliveredSeq", user, conv, seq)
}

// advance raises field of user's document for conv to seq unless it is
// already there, creating the document if needed, and returns the field's
// value afterwards. It relies on one writer per document at a time, which
// read-transfer gives (a conversation's receipts share a partition, applied
// one call at a time): FerretDB applies the conditional update as a read and
// then a write, so racing writers could move a position back.
func (s *Store) advance(ctx context.Context, field, user, conv string, seq int64) (int64, error) {
	coll := s.db.Collection(UserConversation)
	id := readID(user, conv)
	now := time.Now().UnixMilli()
	for attempt := 0; attempt < 3; attempt++ {
		// A document written before the field existed lacks it; $lt never
		// matches a missing field.
		res, err := coll.UpdateOne(ctx,
			bson.D{{Key: "_id", Value: id}, {Key: "$or", Value: bson.A{
				bson.D{{Key: field, Value: bson.D{{Key: "$lt", Value: seq}}}},
				bson.D{{Key: field, Value: bson.D{{Key: "$exists", Value: false}}}},
			}}},
			bson.D{{Key: "$set", Value: bson.D{{Key: field, Value: seq}, {Key: "updatedAt", Value: now}}}})
		if err != nil {
			return 0, fmt.Errorf("advancing %s of %s in %s: %w", field, user, conv, err)
		}
		if res.MatchedCount > 0 {
			return seq, nil
		}
		doc := readDoc{ID: id, UserID: user, ConversationID: conv, UpdatedAt: now}
		if field == "readSeq" {
			doc.ReadSeq = seq
		} else {
			doc.DeliveredSeq = seq
		}
		_, err = coll.InsertOne(ctx, doc)
		if err == nil {
			return seq, nil
		}
		if !isDup(err) {
			return 0, fmt.Errorf("creating %s of %s in %s: %w", field, user, conv, err)
		}
		// It exists: already at or past seq, or created concurrently below it.
		cur, err := s.Position(ctx, user, conv)
		if err != nil {
			return 0, err
		}
		at := cur.Read
		if field != "readSeq" {
			at = cur.Delivered
		}
		if at >= seq {
			return at, nil
		}
	}
	return 0, fmt.Errorf("advancing %s of %s in %s: contended", field, user, conv)
}

// Position returns how far user has read and received conv.
func (s *Store) Position(ctx context.Context, user, conv string) (domain.Position, error) {
	var d readDoc
	err := s.db.Collection(UserConversation).FindOne(ctx, bson.D{{Key: "_id", Value: readID(user, conv)}}).Decode(&d)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return domain.Position{}, nil
	}
	if err != nil {
		return domain.Position{}, fmt.Errorf("reading position of %s in %s: %w", user, conv, err)
	}
	return domain.Position{Read: d.ReadSeq, Delivered: d.DeliveredSeq}, nil
}

// ConversationSeq returns the seq of conv's newest stored message (0: none).
func (s *Store) ConversationSeq(ctx context.Context, conv string) (int64, error) {
	return s.topSeq(ctx, conv)
}

// MessagesByID returns the chat_log entries of ids (missing ids are
// skipped), each read by _id: id, conversation, chat type, sender and seq.
// The content is not there (it lives in the seq claim); receipts need none.
func (s *Store) MessagesByID(ctx context.Context, ids []string) ([]domain.Message, error) {
	found := make([]*domain.Message, len(ids))
	logs := s.db.Collection(ChatLog)
	err := parallel(len(ids), func(k int) error {
		m, err := findByID[domain.Message](ctx, logs, ids[k], "message")
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
	out := make([]domain.Message, 0, len(ids))
	for _, m := range found {
		if m != nil {
			out = append(out, *m)
		}
	}
	return out, nil
}
