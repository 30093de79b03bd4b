// Package transfer turns accepted chats into stored, sequenced messages and
// delivers them: it stores each message once (with its per-conversation seq),
// expands the recipients, finds the gateway instances holding their sockets
// and posts one batch per instance.
package transfer

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"

	"easychat/pkg/event"
	"easychat/pkg/frame"
	"easychat/pkg/push"
	"easychat/pkg/reject"
	"easychat/pkg/store"
)

// Store is the persistence transfer needs.
type Store interface {
	SaveChat(ctx context.Context, ev event.Chat) (store.Message, bool, error)
	MarkPushed(ctx context.Context, msgIDs ...string) error
	Group(ctx context.Context, id string) (store.Group, error)
}

// BatchStore is a Store that stores a whole batch in a few round trips, and
// marks a pushed batch in one write (store.Store does).
type BatchStore interface {
	SaveChats(ctx context.Context, evs []event.Chat, markPushed bool) ([]store.Saved, error)
	MarkPushedMessages(ctx context.Context, msgs []store.Message) error
}

// Router finds the gateway instances of users.
type Router interface {
	Lookup(ctx context.Context, users []string) (map[string][]string, error)
}

// Pusher posts a batch to one gateway instance.
type Pusher interface {
	Send(ctx context.Context, addr string, batch event.Push) (push.Result, error)
}

// Service processes chat records.
type Service struct {
	Store  Store
	Routes Router
	Push   Pusher
	Log    *slog.Logger
}

// Decode parses a request body: one event.Chat, or a JSON array of them (a
// batch from the connector).
func Decode(body []byte) ([]event.Chat, error) {
	evs, err := event.DecodeBatch[event.Chat](body)
	if err != nil {
		return nil, reject.Invalid("bad record: %v", err)
	}
	for _, ev := range evs {
		if ev.MsgID == "" || ev.ConversationID == "" || ev.SendID == "" || ev.RecvID == "" {
			return nil, reject.Invalid("bad record: lacks msgId, conversationId, sendId or recvId")
		}
		if ev.ChatType != frame.SingleChat && ev.ChatType != frame.GroupChat {
			return nil, reject.Invalid("bad record: chatType %d", ev.ChatType)
		}
	}
	return evs, nil
}

// Handle stores evs in order and pushes the new ones. It returns an error only
// when storing failed, so the record is retried; push failures are logged (the
// message is stored and reachable by sync).
func (s *Service) Handle(ctx context.Context, evs []event.Chat) error {
	type delivery struct {
		msg        store.Message
		recipients []string
		data       json.RawMessage // the push frame's data
	}
	var out []delivery
	members := map[string][]string{}
	bs, batched := s.Store.(BatchStore)
	if batched {
		// Marked pushed only after the push (below): a crash in between
		// pushes again on redelivery (gateways drop seqs a socket already
		// has) instead of leaving online recipients to sync.
		saved, err := bs.SaveChats(ctx, evs, false)
		if err != nil {
			return fmt.Errorf("storing %d messages: %w", len(evs), err)
		}
		for _, m := range saved {
			if !m.Fresh && m.Pushed {
				continue // pushed by an earlier delivery, or repeated in this batch
			}
			rcpt, err := s.recipients(ctx, m.Message, members)
			if err != nil {
				return err
			}
			out = append(out, delivery{msg: m.Message, recipients: rcpt})
		}
	} else {
		for _, ev := range evs {
			m, fresh, err := s.Store.SaveChat(ctx, ev)
			if err != nil {
				return fmt.Errorf("storing %s: %w", ev.MsgID, err)
			}
			if !fresh && m.Pushed {
				continue // a redelivery of a message already pushed
			}
			rcpt, err := s.recipients(ctx, m, members)
			if err != nil {
				return err
			}
			out = append(out, delivery{msg: m, recipients: rcpt})
		}
	}
	if len(out) == 0 {
		return nil
	}
	// Each message's push frame is encoded once, whatever the gateways.
	for i := range out {
		data, err := json.Marshal(out[i].msg.PushFrame())
		if err != nil {
			return fmt.Errorf("encoding push of %s: %w", out[i].msg.MsgID, err)
		}
		out[i].data = data
	}

	var all []string
	seen := map[string]bool{}
	for _, d := range out {
		for _, u := range d.recipients {
			if !seen[u] {
				seen[u] = true
				all = append(all, u)
			}
		}
	}
	routes, err := s.Routes.Lookup(ctx, all)
	if err != nil {
		s.Log.Error("route lookup failed; recipients will sync", "err", err, "messages", len(out))
		routes = nil
	}
	// Per instance: which users it holds, then one item per message with the
	// recipients it holds, in message order.
	batches := map[string]*event.Push{}
	for addr, users := range routes {
		held := make(map[string]bool, len(users))
		for _, u := range users {
			held[u] = true
		}
		b := &event.Push{}
		for _, d := range out {
			var us []string
			for _, u := range d.recipients {
				if held[u] {
					us = append(us, u)
				}
			}
			if len(us) == 0 {
				continue
			}
			b.Items = append(b.Items, event.PushItem{Users: us, Frame: frame.Frame{
				FrameType: frame.Data, Method: frame.MethodPush, FormID: d.msg.SendID, Data: d.data,
			}})
		}
		if len(b.Items) > 0 {
			batches[addr] = b
		}
	}
	var wg sync.WaitGroup
	for addr, b := range batches {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := s.Push.Send(ctx, addr, *b); err != nil {
				s.Log.Warn("push failed; recipients will sync", "gateway", addr, "err", err, "items", len(b.Items))
			}
		}()
	}
	wg.Wait()

	if batched {
		msgs := make([]store.Message, len(out))
		for i, d := range out {
			msgs[i] = d.msg
		}
		if err := bs.MarkPushedMessages(ctx, msgs); err != nil {
			s.Log.Warn("marking pushed failed", "err", err) // a redelivery pushes again; sockets drop known seqs
		}
		return nil
	}
	ids := make([]string, len(out))
	for i, d := range out {
		ids[i] = d.msg.MsgID
	}
	if err := s.Store.MarkPushed(ctx, ids...); err != nil {
		// Not fatal: a redelivery would push again, and clients dedupe by msgId.
		s.Log.Warn("marking pushed failed", "err", err)
	}
	return nil
}

func (s *Service) recipients(ctx context.Context, m store.Message, cache map[string][]string) ([]string, error) {
	if m.ChatType == frame.SingleChat {
		return []string{m.RecvID}, nil
	}
	ms, ok := cache[m.RecvID]
	if !ok {
		g, err := s.Store.Group(ctx, m.RecvID)
		if err != nil {
			return nil, fmt.Errorf("reading members of group %s: %w", m.RecvID, err)
		}
		ms = g.Members
		cache[m.RecvID] = ms
	}
	out := make([]string, 0, len(ms))
	for _, u := range ms {
		if u != m.SendID {
			out = append(out, u)
		}
	}
	return out, nil
}
