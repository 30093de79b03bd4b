package store

import (
	"context"
	"errors"
	"fmt"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/mongo"
)

// ConversationState is one conversation as a user sees it in their list.
type ConversationState struct {
	ConversationID string `json:"conversationId"`
	ChatType       int    `json:"chatType"`
	PeerID         string `json:"peerId,omitempty"`    // single chat: the other user
	GroupName      string `json:"groupName,omitempty"` // group chat
	Seq            int64  `json:"seq"`
	ReadSeq        int64  `json:"readSeq"`
	// Single chat: how far the peer has read, and how far the peer's devices
	// have received (never below the read position).
	PeerReadSeq      int64    `json:"peerReadSeq,omitempty"`
	PeerDeliveredSeq int64    `json:"peerDeliveredSeq,omitempty"`
	Unread           int64    `json:"unread"`
	LastMsg          *Message `json:"lastMsg,omitempty"`
	UpdatedAt        int64    `json:"updatedAt"`
}

// Summary is what a conversation list shows of a conversation: its newest
// seq, last message and last activity, and each sender's newest seq in it
// (having sent a message, a member has read everything before it).
type Summary struct {
	Seq       int64            `json:"seq"`
	LastMsg   *Message         `json:"lastMsg,omitempty"`
	UpdatedAt int64            `json:"updatedAt"`
	Sent      map[string]int64 `json:"sent,omitempty"`
}

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
func (s *Store) Summaries(ctx context.Context, convs []string) (map[string]Summary, error) {
	found := make([]Summary, len(convs))
	err := parallel(len(convs), func(k int) error {
		c, err := s.conversation(ctx, convs[k])
		if err != nil {
			return err
		}
		found[k] = Summary{Seq: c.Seq, LastMsg: c.LastMsg, UpdatedAt: c.UpdatedAt, Sent: c.Sent}
		return nil
	})
	if err != nil {
		return nil, err
	}
	out := make(map[string]Summary, len(convs))
	for k, c := range convs {
		out[c] = found[k]
	}
	return out, nil
}

// PositionKey names a user's position in a conversation.
type PositionKey struct{ User, Conversation string }

// Positions returns the positions named by keys, read by _id.
func (s *Store) Positions(ctx context.Context, keys []PositionKey) (map[PositionKey]Position, error) {
	found := make([]Position, len(keys))
	err := parallel(len(keys), func(k int) error {
		p, err := s.Position(ctx, keys[k].User, keys[k].Conversation)
		found[k] = p
		return err
	})
	if err != nil {
		return nil, err
	}
	out := make(map[PositionKey]Position, len(keys))
	for k, key := range keys {
		out[key] = found[k]
	}
	return out, nil
}
