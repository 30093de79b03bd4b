// Package chat accepts a user's conversation.chat frame: it validates it,
// derives the conversation id, assigns a msgId that is stable across resends of
// the same client frame, and publishes it to Kafka keyed by conversation.
package chat

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"easychat/pkg/bus"
	"easychat/pkg/event"
	"easychat/pkg/frame"
	"easychat/pkg/reject"
)

// Publisher is where accepted chats go (Kafka in production).
type Publisher interface {
	Publish(ctx context.Context, recs ...bus.Record) error
}

// Membership answers whether a user may post to a group.
type Membership interface {
	IsMember(ctx context.Context, group, user string) (bool, error)
}

// Service accepts chats.
type Service struct {
	Pub    Publisher
	Groups Membership
	Now    func() time.Time
}

// Accept validates data (a conversation.chat frame's data) from user and
// publishes it. frameID is the client's frame id, used to dedupe resends.
func (s *Service) Accept(ctx context.Context, user, frameID string, data []byte) (frame.ChatAck, error) {
	if user == "" {
		return frame.ChatAck{}, reject.Unauthorized("no authenticated user")
	}
	var c frame.Chat
	if err := json.Unmarshal(data, &c); err != nil {
		return frame.ChatAck{}, reject.Invalid("invalid chat data: %v", err)
	}
	conv, err := c.Validate(user)
	if err != nil {
		return frame.ChatAck{}, reject.Invalid("%v", err)
	}
	if c.ChatType == frame.GroupChat {
		ok, err := s.Groups.IsMember(ctx, c.RecvID, user)
		if errors.Is(err, reject.ErrNotFound) {
			return frame.ChatAck{}, reject.NotFound("no group %s", c.RecvID)
		}
		if err != nil {
			return frame.ChatAck{}, fmt.Errorf("checking membership of %s: %w", c.RecvID, err)
		}
		if !ok {
			return frame.ChatAck{}, reject.Forbidden("not a member of group %s", c.RecvID)
		}
	}
	msgID := event.MsgID(user, conv, frameID, c.Msg.Content)
	if frameID == "" {
		msgID = randomID()
	}
	ev := event.Chat{
		MsgID: msgID, ConversationID: conv, ChatType: c.ChatType,
		SendID: user, RecvID: c.RecvID, SendTime: s.Now().UnixMilli(),
		ClientFrameID: frameID, Msg: frame.Msg{MType: c.Msg.MType, Content: c.Msg.Content},
	}
	b, err := json.Marshal(ev)
	if err != nil {
		return frame.ChatAck{}, fmt.Errorf("encoding chat: %w", err)
	}
	if err := s.Pub.Publish(ctx, bus.Record{Topic: event.TopicChat, Key: conv, Value: b}); err != nil {
		return frame.ChatAck{}, err
	}
	return frame.ChatAck{MsgID: msgID, ConversationID: conv}, nil
}

func randomID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
