package typing

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"sync"
	"testing"

	"easychat/gateway/invoke"
	"easychat/pkg/event"
	"easychat/pkg/frame"
	"easychat/pkg/push"
)

// groups answers the members of g-1 as they are now, counting the calls;
// a non-member is refused as the group function refuses them.
type groups struct {
	mu      sync.Mutex
	members []string
	calls   int
}

func (g *groups) Call(_ context.Context, req invoke.Request) (json.RawMessage, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.calls++
	if !slices.Contains(g.members, req.User) {
		return nil, &invoke.StatusError{Function: req.Function, Status: 403, Msg: "not a member"}
	}
	return json.Marshal(map[string]any{"members": g.members})
}

type everyoneHere struct{}

// Lookup answers every user as held by one gateway instance.
func (everyoneHere) Lookup(_ context.Context, users []string) (map[string][]string, error) {
	return map[string][]string{"gw": users}, nil
}

type sent struct {
	mu sync.Mutex
	to [][]string
}

func (s *sent) Send(_ context.Context, _ string, b event.Push) (push.Result, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, it := range b.Items {
		s.to = append(s.to, it.Users)
	}
	return push.Result{}, nil
}

// Members are remembered for a few seconds, but a member who joined since
// is not refused for them; a non-member is refused every time.
func TestTypingInAGroupFollowsItsMembers(t *testing.T) {
	g := &groups{members: []string{"ann", "ben"}}
	out := &sent{}
	r := &Relay{Groups: g, Routes: everyoneHere{}, Push: out, GroupFunction: "group"}
	ctx := context.Background()
	typing := frame.Typing{ConversationID: "g-1", Typing: true}
	if err := r.Send(ctx, "ann", typing); err != nil {
		t.Fatal(err)
	}
	if err := r.Send(ctx, "ben", typing); err != nil || g.calls != 1 {
		t.Fatalf("ben, with the members remembered: %v (%d calls)", err, g.calls)
	}
	if err := r.Send(ctx, "cat", typing); !errors.Is(err, ErrNotMember) {
		t.Fatalf("a non-member: %v", err)
	}
	g.mu.Lock()
	g.members = append(g.members, "cat")
	g.mu.Unlock()
	if err := r.Send(ctx, "cat", typing); err != nil {
		t.Fatalf("cat, who just joined: %v", err)
	}
	if last := out.to[len(out.to)-1]; !slices.Equal(last, []string{"ann", "ben"}) {
		t.Fatalf("cat's indicator went to %v", last)
	}
}
