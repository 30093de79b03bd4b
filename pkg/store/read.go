package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/mongo"
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
	UpdatedAt      int64  `bson:"updatedAt"`
}

func readID(user, conv string) string { return user + "#" + conv }

// MarkRead advances user's read position in conv to seq (never backwards)
// and returns the position after the call.
func (s *Store) MarkRead(ctx context.Context, user, conv string, seq int64) (int64, error) {
	coll := s.db.Collection(UserConversation)
	id := readID(user, conv)
	now := time.Now().UnixMilli()
	for attempt := 0; attempt < 3; attempt++ {
		res, err := coll.UpdateOne(ctx,
			bson.D{{Key: "_id", Value: id}, {Key: "readSeq", Value: bson.D{{Key: "$lt", Value: seq}}}},
			bson.D{{Key: "$set", Value: bson.D{{Key: "readSeq", Value: seq}, {Key: "updatedAt", Value: now}}}})
		if err != nil {
			return 0, fmt.Errorf("advancing read position of %s in %s: %w", user, conv, err)
		}
		if res.MatchedCount > 0 {
			return seq, nil
		}
		_, err = coll.InsertOne(ctx, readDoc{ID: id, UserID: user, ConversationID: conv, ReadSeq: seq, UpdatedAt: now})
		if err == nil {
			return seq, nil
		}
		if !isDup(err) {
			return 0, fmt.Errorf("creating read position of %s in %s: %w", user, conv, err)
		}
		// It exists: already at or past seq, or created concurrently below it.
		cur, err := s.ReadSeq(ctx, user, conv)
		if err != nil {
			return 0, err
		}
		if cur >= seq {
			return cur, nil
		}
	}
	return 0, fmt.Errorf("advancing read position of %s in %s: contended", user, conv)
}

// ReadSeq returns how far user has read conv (0: nothing).
func (s *Store) ReadSeq(ctx context.Context, user, conv string) (int64, error) {
	var d readDoc
	err := s.db.Collection(UserConversation).FindOne(ctx, bson.D{{Key: "_id", Value: readID(user, conv)}}).Decode(&d)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("reading read position of %s in %s: %w", user, conv, err)
	}
	return d.ReadSeq, nil
}

// MessagesByID returns the stored messages among ids (missing ids are skipped).
func (s *Store) MessagesByID(ctx context.Context, ids []string) ([]Message, error) {
	out := make([]Message, 0, len(ids))
	logs := s.db.Collection(ChatLog)
	for _, id := range ids {
		var m Message
		err := logs.FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Decode(&m)
		if errors.Is(err, mongo.ErrNoDocuments) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("reading message %s: %w", id, err)
		}
		out = append(out, m)
	}
	return out, nil
}

// SetRead flags single-chat messages as read by their recipient.
func (s *Store) SetRead(ctx context.Context, ids []string) error {
	logs := s.db.Collection(ChatLog)
	for _, id := range ids {
		if _, err := logs.UpdateOne(ctx, bson.D{{Key: "_id", Value: id}},
			bson.D{{Key: "$set", Value: bson.D{{Key: "read", Value: true}}}}); err != nil {
			return fmt.Errorf("flagging %s read: %w", id, err)
		}
	}
	return nil
}
