package store

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/mongo"
	"go.mongodb.org/mongo-driver/mongo/options"

	"easychat/pkg/frame"
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

// Conversation returns the state of conversation id (seq 0 if it has no
// message yet).
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

// ConversationsOf lists user's conversations, most recently active first:
// every single chat with a message and every group the user belongs to.
func (s *Store) ConversationsOf(ctx context.Context, user string) ([]ConversationState, error) {
	cur, err := s.db.Collection(Conversation).Find(ctx, bson.D{{Key: "members", Value: user}})
	if err != nil {
		return nil, fmt.Errorf("listing conversations of %s: %w", user, err)
	}
	var singles []convDoc
	if err := cur.All(ctx, &singles); err != nil {
		return nil, fmt.Errorf("decoding conversations of %s: %w", user, err)
	}
	groups, err := s.GroupsOf(ctx, user)
	if err != nil {
		return nil, err
	}
	out := make([]ConversationState, 0, len(singles)+len(groups))
	sent := make([]int64, 0, len(singles)+len(groups)) // user's own latest seq per entry of out
	for _, c := range singles {
		if _, err := s.catchUp(ctx, &c, true); err != nil { // the document is a hint
			return nil, err
		}
		st := ConversationState{ConversationID: c.ID, ChatType: frame.SingleChat, Seq: c.Seq, LastMsg: c.LastMsg, UpdatedAt: c.UpdatedAt}
		for _, m := range c.Members {
			if m != user {
				st.PeerID = m
			}
		}
		if st.PeerID != "" {
			p, err := s.Position(ctx, st.PeerID, c.ID)
			if err != nil {
				return nil, err
			}
			// Having sent a message, the peer has read everything before it.
			st.PeerReadSeq = max(p.Read, c.Sent[st.PeerID])
			st.PeerDeliveredSeq = max(p.Delivered, st.PeerReadSeq)
		}
		sent = append(sent, c.Sent[user])
		out = append(out, st)
	}
	for _, g := range groups {
		c, err := s.conversation(ctx, g.ID)
		if err != nil {
			return nil, err
		}
		upd := c.UpdatedAt
		if upd == 0 {
			upd = g.CreatedAt
		}
		out = append(out, ConversationState{ConversationID: g.ID, ChatType: frame.GroupChat, GroupName: g.Name,
			Seq: c.Seq, LastMsg: c.LastMsg, UpdatedAt: upd})
		sent = append(sent, c.Sent[user])
	}
	for i := range out {
		p, err := s.Position(ctx, user, out[i].ConversationID)
		if err != nil {
			return nil, err
		}
		// Having sent a message, the user has read everything before it.
		out[i].ReadSeq = max(p.Read, sent[i])
		if out[i].Unread = out[i].Seq - out[i].ReadSeq; out[i].Unread < 0 {
			out[i].Unread = 0
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].UpdatedAt > out[j].UpdatedAt })
	return out, nil
}

// History returns up to limit messages of conv with seq < before (before <= 0:
// from the newest), newest first.
func (s *Store) History(ctx context.Context, conv string, before, limit int64) ([]Message, error) {
	filter := bson.D{{Key: "conversationId", Value: conv}}
	if before > 0 {
		filter = append(filter, bson.E{Key: "seq", Value: bson.D{{Key: "$lt", Value: before}}})
	}
	cur, err := s.db.Collection(ChatLog).Find(ctx, filter,
		options.Find().SetSort(bson.D{{Key: "seq", Value: -1}}).SetLimit(limit))
	if err != nil {
		return nil, fmt.Errorf("reading history of %s: %w", conv, err)
	}
	var out []Message
	if err := cur.All(ctx, &out); err != nil {
		return nil, fmt.Errorf("decoding history of %s: %w", conv, err)
	}
	return out, nil
}
