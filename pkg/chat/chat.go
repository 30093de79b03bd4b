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
	"net/http"
	"time"

	"easychat/pkg/batch"
	"easychat/pkg/domain"
	"easychat/pkg/event"
	"easychat/pkg/frame"
	"easychat/pkg/ident"
	"easychat/pkg/reject"
)

// Publisher is where accepted chats go (Kafka in production).
type Publisher interface {
	Publish(ctx context.Context, recs ...domain.Record) error
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

// Accept validates it.Data (a conversation.chat frame's data) from it.User
// and publishes it. it.FrameID is the client's frame id, used to dedupe
// resends.
func (s *Service) Accept(ctx context.Context, it batch.Item) (frame.ChatAck, error) {
	ack, rec, err := s.prepare(ctx, s.Groups, it)
	if err != nil {
		return frame.ChatAck{}, err
	}
	if err := s.Pub.Publish(ctx, rec); err != nil {
		return frame.ChatAck{}, err
	}
	return ack, nil
}

// AcceptBatch accepts the chats of many users at once. Each item is judged on
// its own, as Accept would (a refused item gets its error status); the
// accepted ones are published in one write, in item order, so each sender's
// chats keep their order. An error means no item may be taken as accepted
// (the senders resend; stable msgIds make a resend of a published chat
// harmless).
func (s *Service) AcceptBatch(ctx context.Context, items []batch.Item) ([]batch.Result, error) {
	out := make([]batch.Result, len(items))
	recs := make([]domain.Record, 0, len(items))
	// A busy group sends many of a batch's chats: ask once per member.
	groups := &memberMemo{m: s.Groups, seen: map[[2]string]memberAnswer{}}
	for i, it := range items {
		ack, rec, err := s.prepare(ctx, groups, it)
		if err != nil && !reject.Refusal(err) {
			// An outage (the store unreachable), not this item's fault:
			// the whole batch is answered unavailable and logged once.
			return nil, err
		}
		if err != nil {
			out[i] = batch.Result{Status: reject.Status(err), Error: err.Error()}
			continue
		}
		b, err := json.Marshal(ack)
		if err != nil {
			return nil, fmt.Errorf("encoding ack: %w", err)
		}
		out[i] = batch.Result{Status: http.StatusOK, Data: b}
		recs = append(recs, rec)
	}
	if len(recs) > 0 {
		if err := s.Pub.Publish(ctx, recs...); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// memberMemo answers each (group, user) once; it lives for one batch.
type memberMemo struct {
	m    Membership
	seen map[[2]string]memberAnswer
}

type memberAnswer struct {
	ok  bool
	err error
}

func (c *memberMemo) IsMember(ctx context.Context, group, user string) (bool, error) {
	k := [2]string{group, user}
	if a, ok := c.seen[k]; ok {
		return a.ok, a.err
	}
	ok, err := c.m.IsMember(ctx, group, user)
	c.seen[k] = memberAnswer{ok, err}
	return ok, err
}

// prepare validates one chat and builds its record and its ack.
func (s *Service) prepare(ctx context.Context, groups Membership, it batch.Item) (frame.ChatAck, domain.Record, error) {
	user, frameID := it.User, it.FrameID
	if !ident.IsUser(user) {
		return frame.ChatAck{}, domain.Record{}, reject.Unauthorized("no authenticated user")
	}
	if frameID != "" && !ident.IsFrameID(frameID) {
		return frame.ChatAck{}, domain.Record{}, reject.Invalid("frame id must be 1-%d printable ASCII characters", ident.MaxFrameID)
	}
	var c frame.Chat
	if err := json.Unmarshal(it.Data, &c); err != nil {
		return frame.ChatAck{}, domain.Record{}, reject.Invalid("invalid chat data: %v", err)
	}
	conv, err := c.Validate(user)
	if err != nil {
		return frame.ChatAck{}, domain.Record{}, reject.Invalid("%v", err)
	}
	if c.ChatType == frame.GroupChat {
		ok, err := groups.IsMember(ctx, c.RecvID, user)
		if errors.Is(err, reject.ErrNotFound) {
			return frame.ChatAck{}, domain.Record{}, reject.NotFound("no group %s", c.RecvID)
		}
		if err != nil {
			return frame.ChatAck{}, domain.Record{}, fmt.Errorf("checking membership of %s: %w", c.RecvID, err)
		}
		if !ok {
			return frame.ChatAck{}, domain.Record{}, reject.Forbidden("not a member of group %s", c.RecvID)
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
		Origin: it.Origin,
	}
	b, err := json.Marshal(ev)
	if err != nil {
		return frame.ChatAck{}, domain.Record{}, fmt.Errorf("encoding chat: %w", err)
	}
	return frame.ChatAck{MsgID: msgID, ConversationID: conv}, domain.Record{Topic: event.TopicChat, Key: conv, Value: b}, nil
}

func randomID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
