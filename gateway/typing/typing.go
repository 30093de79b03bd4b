// Package typing relays "is typing" indicators: from the socket of the user
// typing to the sockets of the conversation's other members, gateway to
// gateway through the route registry and the gateways' push endpoint. They
// are never stored and never go through Kafka: one that is lost is
// replaced by the next a few seconds later, and one that is not repeated
// expires on the receiving client (TTL).
package typing

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"easychat/gateway/invoke"
	"easychat/pkg/event"
	"easychat/pkg/frame"
	"easychat/pkg/ident"
	"easychat/pkg/push"
)

// TTL is how long a client shows an indicator that is not repeated.
const TTL = 5 * time.Second

// membersTTL is how long a group's members are taken as known: a member
// removed meanwhile may still be told someone is typing for that long.
const membersTTL = 10 * time.Second

// Caller calls the group function as a user (invoke.Client).
type Caller interface {
	Call(ctx context.Context, req invoke.Request) (json.RawMessage, error)
}

// Relay sends indicators to the other members of a conversation.
type Relay struct {
	Groups Caller // the group function, asked for members as the typing user
	Routes push.Router
	Push   push.Sender
	// GroupFunction names the group function ("group").
	GroupFunction string

	mu      sync.Mutex
	members map[string]cached
}

type cached struct {
	members []string
	until   time.Time
}

// ErrNotMember is returned for a conversation the user is not part of.
var ErrNotMember = errors.New("not part of this conversation")

// Send tells the other members of t.ConversationID that user is (or
// stopped) typing.
func (r *Relay) Send(ctx context.Context, user string, t frame.Typing) error {
	conv := t.ConversationID
	var others []string
	chatType := frame.SingleChat
	if peer, ok := frame.SinglePeer(conv, user); ok {
		others = []string{peer}
	} else if ident.IsGroup(conv) {
		ms, err := r.groupMembers(ctx, user, conv)
		if err != nil {
			return err
		}
		others = slices.DeleteFunc(slices.Clone(ms), func(u string) bool { return u == user })
		chatType = frame.GroupChat
	} else {
		return ErrNotMember
	}
	if len(others) == 0 {
		return nil
	}
	data, err := json.Marshal(frame.Typing{ConversationID: conv, ChatType: chatType, UserID: user, Typing: t.Typing, TTL: TTL.Milliseconds()})
	if err != nil {
		return fmt.Errorf("encoding typing: %w", err)
	}
	return push.Fanout(ctx, r.Routes, r.Push, []event.PushItem{{Users: others,
		Frame: frame.Frame{FrameType: frame.Data, Method: frame.MethodTyping, FormID: user, Data: data}}})
}

// groupMembers returns the members of group g, which must include user:
// asked of the group function as user (which refuses a non-member), and
// remembered for a few seconds. A user the remembered members lack asks
// again: they may have joined since (a non-member's asking is bounded by
// the typing rate of their sockets).
func (r *Relay) groupMembers(ctx context.Context, user, g string) ([]string, error) {
	r.mu.Lock()
	c, ok := r.members[g]
	r.mu.Unlock()
	if ok && time.Now().Before(c.until) && slices.Contains(c.members, user) {
		return c.members, nil
	}
	body, _ := json.Marshal(map[string]string{"action": "members", "groupId": g})
	res, err := r.Groups.Call(ctx, invoke.Request{Function: r.GroupFunction, User: user, Body: body})
	var se *invoke.StatusError
	if errors.As(err, &se) && se.Status < 500 {
		return nil, ErrNotMember
	}
	if err != nil {
		return nil, fmt.Errorf("reading members of %s: %w", g, err)
	}
	var grp struct {
		Members []string `json:"members"`
	}
	if err := json.Unmarshal(res, &grp); err != nil {
		return nil, fmt.Errorf("decoding members of %s: %w", g, err)
	}
	r.mu.Lock()
	if r.members == nil || len(r.members) > 10_000 {
		r.members = map[string]cached{}
	}
	r.members[g] = cached{members: grp.Members, until: time.Now().Add(membersTTL)}
	r.mu.Unlock()
	if !slices.Contains(grp.Members, user) {
		return nil, ErrNotMember
	}
	return grp.Members, nil
}
