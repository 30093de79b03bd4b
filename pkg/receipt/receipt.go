// Package receipt carries read and delivery receipts: a reader's
// conversation.markChat (or a device's conversation.markDelivered) is accepted
// and published to Kafka (Accept, AcceptDelivered), then recorded and pushed
// to the senders (Transfer). A reader's position is one number per (user,
// conversation), so receipts stay exact for groups of any size.
package receipt

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"easychat/pkg/domain"
	"easychat/pkg/event"
	"easychat/pkg/frame"
	"easychat/pkg/ident"
	"easychat/pkg/push"
	"easychat/pkg/reject"
)

// MarkChat is the data of a conversation.markChat frame (seed field names).
type MarkChat struct {
	ChatType       int      `json:"chatType"`
	RecvID         string   `json:"recvId"`
	ConversationID string   `json:"conversationId"`
	MsgIDs         []string `json:"msgIds"`
	ReadSeq        int64    `json:"readSeq"` // optional: everything up to this seq
}

// MarkDelivered is the data of a conversation.markDelivered frame: the
// device holds every message of a single chat up to Seq.
type MarkDelivered struct {
	ChatType       int    `json:"chatType"`
	RecvID         string `json:"recvId"`
	ConversationID string `json:"conversationId"`
	Seq            int64  `json:"seq"`
}

// Membership answers whether a user belongs to a group.
type Membership interface {
	IsMember(ctx context.Context, group, user string) (bool, error)
}

// Publisher is where accepted receipts go (Kafka).
type Publisher interface {
	Publish(ctx context.Context, recs ...domain.Record) error
}

// Acceptor validates and publishes markChat frames (the mark function).
type Acceptor struct {
	Pub    Publisher
	Groups Membership
	Now    func() time.Time
}

// MaxMsgIDs bounds one markChat: each id costs a lookup when the receipt is
// recorded. A client with more to mark sends readSeq (which covers them all)
// and its newest ids.
const MaxMsgIDs = 100

// Accept publishes reader's markChat data and returns its conversation id.
func (a *Acceptor) Accept(ctx context.Context, reader string, data []byte) (map[string]string, error) {
	if reader == "" {
		return nil, reject.Unauthorized("login required")
	}
	var m MarkChat
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, reject.Invalid("invalid markChat data: %v", err)
	}
	if len(m.MsgIDs) == 0 && m.ReadSeq <= 0 {
		return nil, reject.Invalid("msgIds or readSeq is required")
	}
	if len(m.MsgIDs) > MaxMsgIDs {
		return nil, reject.Invalid("at most %d msgIds", MaxMsgIDs)
	}
	if err := ident.MsgIDs("msgIds", m.MsgIDs); err != nil {
		return nil, err
	}
	if m.ReadSeq < 0 {
		return nil, reject.Invalid("readSeq must not be negative")
	}
	conv := m.ConversationID
	switch m.ChatType {
	case frame.SingleChat:
		var err error
		if conv, err = singleConversation(reader, m.RecvID, conv); err != nil {
			return nil, err
		}
	case frame.GroupChat:
		if conv == "" {
			conv = m.RecvID
		}
		if conv == "" {
			return nil, reject.Invalid("recvId or conversationId is required")
		}
		if err := ident.Group("conversationId", conv); err != nil {
			return nil, err
		}
		ok, err := a.Groups.IsMember(ctx, conv, reader)
		if errors.Is(err, reject.ErrNotFound) {
			return nil, reject.NotFound("no group %s", conv)
		}
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, reject.Forbidden("not a member of group %s", conv)
		}
	default:
		return nil, reject.Invalid("%v", frame.ErrChatType)
	}
	return a.publish(ctx, event.Read{ConversationID: conv, ChatType: m.ChatType, ReaderID: reader, MsgIDs: m.MsgIDs,
		ReadSeq: m.ReadSeq})
}

// AcceptDelivered publishes a device's markDelivered data and returns its
// conversation id. Only single chats have a delivered state: in a group the
// sender sees who has read a message.
func (a *Acceptor) AcceptDelivered(ctx context.Context, reader string, data []byte) (map[string]string, error) {
	if reader == "" {
		return nil, reject.Unauthorized("login required")
	}
	var m MarkDelivered
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, reject.Invalid("invalid markDelivered data: %v", err)
	}
	if m.ChatType != frame.SingleChat {
		return nil, reject.Invalid("markDelivered is for single chats (chatType %d)", frame.SingleChat)
	}
	if m.Seq <= 0 {
		return nil, reject.Invalid("seq is required")
	}
	conv, err := singleConversation(reader, m.RecvID, m.ConversationID)
	if err != nil {
		return nil, err
	}
	return a.publish(ctx, event.Read{ConversationID: conv, ChatType: frame.SingleChat, ReaderID: reader,
		DeliveredSeq: m.Seq})
}

func (a *Acceptor) publish(ctx context.Context, ev event.Read) (map[string]string, error) {
	ev.Time = a.Now().UnixMilli()
	b, err := json.Marshal(ev)
	if err != nil {
		return nil, fmt.Errorf("encoding receipt: %w", err)
	}
	if err := a.Pub.Publish(ctx, domain.Record{Topic: event.TopicRead, Key: ev.ConversationID, Value: b}); err != nil {
		return nil, err
	}
	return map[string]string{"conversationId": ev.ConversationID}, nil
}

// singleConversation is the single chat of reader named by conv, or by its
// peer recv when conv is empty; reader must take part in it.
func singleConversation(reader, recv, conv string) (string, error) {
	if conv == "" {
		if recv == "" || recv == reader {
			return "", reject.Invalid("recvId or conversationId is required")
		}
		if err := ident.User("recvId", recv); err != nil {
			return "", err
		}
		conv = frame.SingleConversationID(reader, recv)
	}
	if err := ident.Conversation("conversationId", conv); err != nil {
		return "", err
	}
	if _, ok := frame.SinglePeer(conv, reader); !ok {
		return "", reject.Forbidden("not part of conversation %s", conv)
	}
	return conv, nil
}

// Store is the persistence receipts need.
type Store interface {
	MessagesByID(ctx context.Context, ids []string) ([]domain.Message, error)
	MarkRead(ctx context.Context, user, conv string, seq int64) (int64, error)
	MarkDelivered(ctx context.Context, user, conv string, seq int64) (int64, error)
	ConversationSeq(ctx context.Context, conv string) (int64, error)
	Position(ctx context.Context, user, conv string) (domain.Position, error)
}

// Positions is where recorded positions update what conversation lists
// show (listcache.Redis).
type Positions interface {
	PutPositions(ctx context.Context, pos map[domain.PositionKey]domain.Position) error
}

// Transfer records receipts and notifies senders (the read-transfer
// function). Lists, when set, hears of every position recorded.
type Transfer struct {
	Store  Store
	Lists  Positions
	Routes push.Router
	Push   push.Sender
	Log    *slog.Logger
}

// Decode parses one event.Read or a JSON array of them.
func Decode(body []byte) ([]event.Read, error) {
	evs, err := event.DecodeBatch[event.Read](body)
	if err != nil {
		return nil, reject.Invalid("bad read record: %v", err)
	}
	for _, ev := range evs {
		if !ident.IsConversation(ev.ConversationID) || !ident.IsUser(ev.ReaderID) || len(ev.MsgIDs) > MaxMsgIDs {
			return nil, reject.Invalid("bad read record: conversationId, readerId or msgIds")
		}
	}
	return evs, nil
}

// Handle records evs. Receipts of one reader in one conversation are merged
// first, so a burst of markChat costs one write and one notice.
func (t *Transfer) Handle(ctx context.Context, evs []event.Read) error {
	type key struct{ conv, reader string }
	merged := map[key]*event.Read{}
	var order []key
	for _, ev := range evs {
		k := key{ev.ConversationID, ev.ReaderID}
		m, ok := merged[k]
		if !ok {
			cp := ev
			cp.MsgIDs = append([]string(nil), ev.MsgIDs...)
			merged[k] = &cp
			order = append(order, k)
			continue
		}
		m.MsgIDs = append(m.MsgIDs, ev.MsgIDs...)
		m.ReadSeq = max(m.ReadSeq, ev.ReadSeq)
		m.DeliveredSeq = max(m.DeliveredSeq, ev.DeliveredSeq)
	}

	var notices []item
	moved := map[domain.PositionKey]bool{} // positions recorded, for the lists
	for _, k := range order {
		ev := merged[k]
		if ev.ReadSeq > 0 || ev.DeliveredSeq > 0 {
			// Positions a client claims stop at what exists, so a message
			// sent later is not shown read or delivered before it arrives.
			top, err := t.Store.ConversationSeq(ctx, ev.ConversationID)
			if err != nil {
				return err
			}
			ev.ReadSeq = min(ev.ReadSeq, top)
			ev.DeliveredSeq = min(ev.DeliveredSeq, top)
		}
		if ev.DeliveredSeq > 0 && ev.ChatType == frame.SingleChat {
			pos, err := t.Store.MarkDelivered(ctx, ev.ReaderID, ev.ConversationID, ev.DeliveredSeq)
			if err != nil {
				return err
			}
			moved[domain.PositionKey{User: ev.ReaderID, Conversation: ev.ConversationID}] = true
			if peer, ok := frame.SinglePeer(ev.ConversationID, ev.ReaderID); ok {
				notices = append(notices, item{[]string{peer}, frame.MethodDelivered, ev.ReaderID, frame.Delivery{
					ConversationID: ev.ConversationID, ChatType: ev.ChatType, UserID: ev.ReaderID, DeliveredSeq: pos}})
			}
		}
		if len(ev.MsgIDs) == 0 && ev.ReadSeq <= 0 {
			continue
		}
		msgs, err := t.Store.MessagesByID(ctx, ev.MsgIDs)
		if err != nil {
			return err
		}
		seq := ev.ReadSeq
		var ids []string
		senders := map[string]bool{}
		for _, m := range msgs {
			if m.ConversationID != ev.ConversationID {
				continue // an id from another conversation is ignored, not trusted
			}
			ids = append(ids, m.MsgID)
			if m.Seq > seq {
				seq = m.Seq
			}
			if m.SendID != ev.ReaderID {
				senders[m.SendID] = true
			}
		}
		if seq <= 0 {
			continue
		}
		pos, err := t.Store.MarkRead(ctx, ev.ReaderID, ev.ConversationID, seq)
		if err != nil {
			return err
		}
		moved[domain.PositionKey{User: ev.ReaderID, Conversation: ev.ConversationID}] = true
		if ev.ChatType == frame.SingleChat {
			if peer, ok := frame.SinglePeer(ev.ConversationID, ev.ReaderID); ok {
				senders[peer] = true
			}
		}
		// The reader's own devices learn it too: a chat read on the laptop is
		// no longer unread on the phone.
		to := []string{ev.ReaderID}
		for u := range senders {
			to = append(to, u)
		}
		notices = append(notices, item{to, frame.MethodRead, ev.ReaderID, frame.ReadNotice{ConversationID: ev.ConversationID,
			ChatType: ev.ChatType, ReaderID: ev.ReaderID, ReadSeq: pos, MsgIDs: ids}})
	}
	if err := t.cachePositions(ctx, moved); err != nil {
		return err
	}
	t.notify(ctx, notices...)
	return nil
}

// cachePositions tells the lists the positions just recorded, as the store
// has them now (both fields, whichever moved). Failing fails the call: the
// receipt is delivered again, so lists do not show a stale position long.
func (t *Transfer) cachePositions(ctx context.Context, moved map[domain.PositionKey]bool) error {
	if t.Lists == nil || len(moved) == 0 {
		return nil
	}
	pos := make(map[domain.PositionKey]domain.Position, len(moved))
	for k := range moved {
		p, err := t.Store.Position(ctx, k.User, k.Conversation)
		if err != nil {
			return err
		}
		pos[k] = p
	}
	if err := t.Lists.PutPositions(ctx, pos); err != nil {
		return fmt.Errorf("updating conversation lists: %w", err)
	}
	return nil
}

// item is one receipt frame and the users it goes to.
type item struct {
	to     []string
	method string
	from   string
	data   any
}

// notify pushes notices to the gateways of their recipients; failures are
// logged (the read state is stored and visible in the conversation list).
func (t *Transfer) notify(ctx context.Context, items ...item) {
	if len(items) == 0 {
		return
	}
	pushes := make([]event.PushItem, len(items))
	for i, it := range items {
		data, _ := json.Marshal(it.data)
		pushes[i] = event.PushItem{Users: it.to, Frame: frame.Frame{
			FrameType: frame.Data, Method: it.method, FormID: it.from, Data: data}}
	}
	if err := push.Fanout(ctx, t.Routes, t.Push, pushes); err != nil {
		t.Log.Warn("pushing receipts failed", "err", err)
	}
}
