// Package transfer turns accepted chats into stored, sequenced messages and
// delivers them: it stores each message once (with its per-conversation seq),
// expands the recipients, finds the gateway instances holding their sockets
// and posts one batch per instance.
package transfer

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
	"easychat/pkg/quote"
	"easychat/pkg/reject"
)

// Store is the persistence transfer needs (store.Store).
type Store interface {
	// Append makes evs durable; Settle then writes what only makes reads
	// cheaper (store.Store.SaveChats is both).
	Append(ctx context.Context, evs []event.Chat) ([]domain.Saved, error)
	Settle(ctx context.Context, saved []domain.Saved) error
	Group(ctx context.Context, id string) (domain.Group, error)
	// Changes (change.go).
	AppendChanges(ctx context.Context, evs []event.Chat) ([]domain.Change, error)
	MessagesAt(ctx context.Context, conv string, seqs []int64) ([]*domain.Message, error)
	Revise(ctx context.Context, m domain.Message) error
	Hide(ctx context.Context, user, conv string, seq int64) (int64, error)
}

// Lists is where stored messages update what conversation lists show
// (listcache.Redis).
type Lists interface {
	Advance(ctx context.Context, sums map[string]domain.Summary) error
	Revise(ctx context.Context, m domain.Message) error
	// Hid records the newest seq user deleted for themselves in conv.
	Hid(ctx context.Context, user, conv string, seq int64) error
}

// Service processes chat records. Lists, when set, hears of every stored
// message before it is pushed: a list or sync read after a push shows it.
type Service struct {
	Store  Store
	Lists  Lists
	Routes push.Router
	Push   push.Sender
	Log    *slog.Logger
	// RemoveFile deletes the bytes of a file (a recalled file message's), or
	// records that they are to be deleted; an error makes the record retried.
	RemoveFile func(ctx context.Context, key string) error
}

// Decode parses a request body: one event.Chat, or a JSON array of them (a
// batch from the connector).
func Decode(body []byte) ([]event.Chat, error) {
	evs, err := event.DecodeBatch[event.Chat](body)
	if err != nil {
		return nil, reject.Invalid("bad record: %v", err)
	}
	for _, ev := range evs {
		if err := check(ev); err != nil {
			return nil, err
		}
		if err := checkChange(ev.Change); err != nil {
			return nil, err
		}
	}
	return evs, nil
}

// check refuses a record whose ids are malformed or do not agree: it can
// never be stored right, so it goes to the dead-letter topic.
func check(ev event.Chat) error {
	if !ident.IsMsgID(ev.MsgID) || !ident.IsUser(ev.SendID) {
		return reject.Invalid("bad record: msgId or sendId")
	}
	switch ev.ChatType {
	case frame.SingleChat:
		if !ident.IsUser(ev.RecvID) || ev.ConversationID != ident.Single(ev.SendID, ev.RecvID) || ev.SendID == ev.RecvID {
			return reject.Invalid("bad record: single chat ids")
		}
	case frame.GroupChat:
		if !ident.IsGroup(ev.RecvID) || ev.ConversationID != ev.RecvID {
			return reject.Invalid("bad record: group chat ids")
		}
	default:
		return reject.Invalid("bad record: chatType %d", ev.ChatType)
	}
	return nil
}

// Handle stores evs in order and pushes them. It returns an error only when
// storing failed, so the record is retried; push failures are logged (the
// message is stored and reachable by sync).
//
// A redelivered message (stored by an earlier attempt) is pushed again: that
// attempt may have stopped before its push. Gateways drop a seq a socket has
// already been sent, so nobody sees it twice; keeping a "pushed" mark per
// message instead cost a third of the store's writes and could not close the
// gap between a push and its mark anyway.
func (s *Service) Handle(ctx context.Context, evs []event.Chat) error {
	var msgs, changes []event.Chat
	for _, ev := range evs {
		if ev.Change != nil {
			changes = append(changes, ev)
		} else {
			msgs = append(msgs, ev)
		}
	}
	// A change comes after the message it changes (the chat function took
	// it once the message was stored), so changing after storing keeps order.
	if len(msgs) > 0 {
		if err := s.store(ctx, msgs); err != nil {
			return err
		}
	}
	if len(changes) > 0 {
		return s.change(ctx, changes)
	}
	return nil
}

// store stores chat messages and pushes them.
func (s *Service) store(ctx context.Context, evs []event.Chat) error {
	// Recipients first: a message to a group that does not exist is refused
	// (and dead-lettered) before anything is stored.
	members := map[string][]string{}
	for _, ev := range evs {
		if _, err := s.recipients(ctx, ev.ChatType, ev.SendID, ev.RecvID, members); err != nil {
			return err
		}
	}
	saved, err := s.Store.Append(ctx, evs)
	if err != nil {
		return fmt.Errorf("storing %d messages: %w", len(evs), err)
	}
	// The messages are durable and readable: the pages and hints that make
	// later reads cheaper are written while they are pushed. A failure
	// there fails the call (the record comes again and finishes them).
	settled := make(chan error, 1)
	go func() { settled <- s.Store.Settle(ctx, saved) }()
	if err := s.deliver(ctx, evs, saved, members); err != nil {
		<-settled
		return err
	}
	if err := <-settled; err != nil {
		return fmt.Errorf("settling %d messages: %w", len(saved), err)
	}
	return nil
}

// deliver tells the conversation lists of saved and pushes them.
func (s *Service) deliver(ctx context.Context, evs []event.Chat, saved []domain.Saved, members map[string][]string) error {
	if s.Lists != nil {
		// Failing here fails the call: the record is delivered again, so
		// the lists cannot miss a stored message for long.
		if err := s.Lists.Advance(ctx, summaries(saved, time.Now())); err != nil {
			return fmt.Errorf("updating conversation lists: %w", err)
		}
	}
	origin := make(map[string]string, len(evs))
	for _, ev := range evs {
		if ev.Origin != "" {
			origin[ev.MsgID] = ev.Origin
		}
	}
	previews, err := s.withPreviews(ctx, saved)
	if err != nil {
		return err
	}
	items := make([]event.PushItem, 0, len(saved))
	for _, m := range saved {
		if m.Repeat {
			continue // the same message earlier in this batch
		}
		rcpt, err := s.recipients(ctx, m.ChatType, m.SendID, m.RecvID, members)
		if err != nil {
			return err
		}
		// Each message's push frame is encoded once, whatever the gateways.
		data, err := json.Marshal(previews[m.MsgID].PushFrame())
		if err != nil {
			return fmt.Errorf("encoding push of %s: %w", m.MsgID, err)
		}
		items = append(items, event.PushItem{Users: rcpt, Origin: origin[m.MsgID], Frame: frame.Frame{
			FrameType: frame.Data, Method: frame.MethodPush, FormID: m.SendID, Data: data,
		}})
	}
	if err := push.Fanout(ctx, s.Routes, s.Push, items); err != nil {
		s.Log.Warn("push failed; recipients will sync", "err", err, "messages", len(items))
	}
	return nil
}

// recipients are the members of m's conversation, the sender too: its other
// devices show what it wrote (gateways skip the socket it came from).
func (s *Service) recipients(ctx context.Context, chatType int, send, recv string, cache map[string][]string) ([]string, error) {
	if chatType == frame.SingleChat {
		return []string{recv, send}, nil
	}
	ms, ok := cache[recv]
	if !ok {
		g, err := s.Store.Group(ctx, recv)
		if errors.Is(err, reject.ErrNotFound) {
			return nil, reject.Invalid("bad record: no group %s", recv)
		}
		if err != nil {
			return nil, fmt.Errorf("reading members of group %s: %w", recv, err)
		}
		ms = g.Members
		cache[recv] = ms
	}
	return ms, nil
}

// summaries is what saved changes of its conversations' summaries.
func summaries(saved []domain.Saved, now time.Time) map[string]domain.Summary {
	out := map[string]domain.Summary{}
	for _, m := range saved {
		sum := out[m.ConversationID]
		if sum.Sent == nil {
			sum.Sent = map[string]int64{}
		}
		if m.Seq > sum.Seq {
			last := m.Message
			sum.Seq, sum.LastMsg = m.Seq, &last
		}
		sum.UpdatedAt = now.UnixMilli()
		sum.Sent[m.SendID] = max(sum.Sent[m.SendID], m.Seq)
		for _, u := range m.Mentions() {
			if sum.Mentioned == nil {
				sum.Mentioned = map[string]int64{}
			}
			sum.Mentioned[u] = max(sum.Mentioned[u], m.Seq)
		}
		out[m.ConversationID] = sum
	}
	return out
}

// withPreviews returns saved's messages by msgId, replies with the preview
// of what they quote.
func (s *Service) withPreviews(ctx context.Context, saved []domain.Saved) (map[string]domain.Message, error) {
	msgs := make([]domain.Message, 0, len(saved))
	for _, m := range saved {
		if !m.Repeat {
			msgs = append(msgs, m.Message)
		}
	}
	if err := quote.Fill(ctx, s.Store, msgs); err != nil {
		return nil, err
	}
	out := make(map[string]domain.Message, len(msgs))
	for _, m := range msgs {
		out[m.MsgID] = m
	}
	return out, nil
}
