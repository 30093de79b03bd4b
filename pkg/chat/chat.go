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
	"easychat/pkg/limit"
	"easychat/pkg/reject"
)

// Publisher is where accepted chats go (Kafka in production).
type Publisher interface {
	Publish(ctx context.Context, recs ...domain.Record) error
}

// Membership answers whether a user may post to a group, and who owns it.
type Membership interface {
	IsMember(ctx context.Context, group, user string) (bool, error)
	Group(ctx context.Context, id string) (domain.Group, error)
}

// Messages finds stored messages (those a reply quotes or a change
// changes); reject.ErrNotFound when there is none.
type Messages interface {
	Message(ctx context.Context, msgID string) (domain.Message, error)
}

// Service accepts chats and changes of stored messages.
type Service struct {
	Pub      Publisher
	Groups   Membership
	Messages Messages
	Now      func() time.Time
	// RecallWindow and EditWindow are how long after sending its sender
	// may recall or edit a message (a group's owner recalls any, any time).
	RecallWindow time.Duration
	EditWindow   time.Duration
	// Wait is how long a call made alone waits for the message it names to
	// be stored: the client may have its ack (the message is in Kafka)
	// before transfer stored it. Calls of a batch do not wait, so that one
	// frame cannot hold up the others.
	Wait time.Duration
	// UseFile checks the file of an image or file message against its
	// upload and marks it used by the message (package files); nil: such
	// messages are refused.
	UseFile func(ctx context.Context, msgID, user string, mType int, f frame.File) error
	// Limiter and ChangeLimit bound the changes (recall, edit, react, hide)
	// one user makes; nil or zero: no bound.
	Limiter     limit.Limiter
	ChangeLimit limit.Rule
}

// fileOutage is a file message that could not be checked because the file
// store is unreachable: that item is answered unavailable (retry), not the
// whole batch, so text messages never wait on the file store.
type fileOutage struct{ err error }

func (e *fileOutage) Error() string { return "checking a file: " + e.err.Error() }
func (e *fileOutage) Unwrap() error { return e.err }

// errFileOutage is what the client sees of a fileOutage.
const errFileOutage = "file storage temporarily unavailable, retry"

// Defaults of the windows.
const (
	DefaultRecallWindow = 2 * time.Minute
	DefaultEditWindow   = 15 * time.Minute
	DefaultWait         = 2 * time.Second
)

// Accept validates it.Data (a conversation.chat frame's data, or a change's
// by it.Method) from it.User and publishes it. it.FrameID is the client's
// frame id, used to dedupe resends. A message it names that is not stored
// yet is waited for (Wait).
func (s *Service) Accept(ctx context.Context, it batch.Item) (frame.ChatAck, error) {
	ack, rec, err := s.prepare(ctx, &memberMemo{m: s.Groups, seen: map[[2]string]memberAnswer{}}, it, s.Wait)
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
		ack, rec, err := s.prepare(ctx, groups, it, 0)
		var fo *fileOutage
		if errors.As(err, &fo) {
			out[i] = batch.Result{Status: http.StatusServiceUnavailable, Error: errFileOutage}
			continue
		}
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
	m      Membership
	seen   map[[2]string]memberAnswer
	groups map[string]groupAnswer
}

type groupAnswer struct {
	g   domain.Group
	err error
}

func (c *memberMemo) Group(ctx context.Context, id string) (domain.Group, error) {
	if a, ok := c.groups[id]; ok {
		return a.g, a.err
	}
	g, err := c.m.Group(ctx, id)
	if c.groups == nil {
		c.groups = map[string]groupAnswer{}
	}
	c.groups[id] = groupAnswer{g, err}
	return g, err
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

// prepare validates one chat or change and builds its record and its ack.
func (s *Service) prepare(ctx context.Context, groups Membership, it batch.Item, wait time.Duration) (frame.ChatAck, domain.Record, error) {
	user, frameID := it.User, it.FrameID
	if !ident.IsUser(user) {
		return frame.ChatAck{}, domain.Record{}, reject.Unauthorized("no authenticated user")
	}
	if frameID != "" && !ident.IsFrameID(frameID) {
		return frame.ChatAck{}, domain.Record{}, reject.Invalid("frame id must be 1-%d printable ASCII characters", ident.MaxFrameID)
	}
	if kind, ok := frame.ChangeMethods[it.Method]; ok {
		return s.prepareChange(ctx, groups, it, kind, wait)
	}
	if it.Method != "" && it.Method != frame.MethodChat {
		return frame.ChatAck{}, domain.Record{}, reject.Invalid("unknown method %q", it.Method)
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
	msg := c.Accepted().Msg
	if err := s.checkMentions(ctx, groups, c, user); err != nil {
		return frame.ChatAck{}, domain.Record{}, err
	}
	if msg.Quote != nil {
		q, err := s.find(ctx, conv, msg.Quote.MsgID, wait)
		if errors.Is(err, reject.ErrNotFound) {
			return frame.ChatAck{}, domain.Record{}, reject.NotFound("quoted message not found")
		}
		if err != nil {
			return frame.ChatAck{}, domain.Record{}, err
		}
		msg.Quote.Seq = q.Seq
	}
	msgID := event.MsgID(user, conv, frameID, c.Msg.Content)
	if frameID == "" {
		msgID = randomID()
	}
	if msg.MType != frame.TextMsg {
		if err := s.useFile(ctx, conv, msgID, user, msg); err != nil {
			return frame.ChatAck{}, domain.Record{}, err
		}
	}
	ev := event.Chat{
		MsgID: msgID, ConversationID: conv, ChatType: c.ChatType,
		SendID: user, RecvID: c.RecvID, SendTime: s.Now().UnixMilli(),
		ClientFrameID: frameID, Msg: msg, Origin: it.Origin,
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

// useFile checks an image or file message's file and marks it used.
func (s *Service) useFile(ctx context.Context, conv, msgID, user string, msg frame.Msg) error {
	f, err := frame.ParseFile(msg.MType, msg.Content, conv, user)
	if err != nil {
		return reject.Invalid("%v", err)
	}
	if s.UseFile == nil {
		return reject.Invalid("this server does not take files")
	}
	err = s.UseFile(ctx, msgID, user, msg.MType, f)
	if err != nil && !reject.Refusal(err) {
		return &fileOutage{err}
	}
	return err
}
