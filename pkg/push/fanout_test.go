package push

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"easychat/pkg/event"
	"easychat/pkg/frame"
)

type routes map[string][]string

func (r routes) Lookup(_ context.Context, users []string) (map[string][]string, error) {
	out := map[string][]string{}
	for addr, held := range r {
		for _, h := range held {
			for _, u := range users {
				if u == h {
					out[addr] = append(out[addr], u)
				}
			}
		}
	}
	return out, nil
}

type sent struct {
	mu      sync.Mutex
	batches map[string]event.Push
}

func (s *sent) Send(_ context.Context, addr string, b event.Push) (Result, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.batches[addr] = b
	return Result{}, nil
}

func item(users []string, content, origin string) event.PushItem {
	return event.PushItem{Users: users, Origin: origin, Frame: frame.Frame{Method: frame.MethodPush, Data: []byte(`"` + content + `"`)}}
}

// Consecutive items for the same users on a gateway go as one item whose
// users are listed once; the frames keep their order and origins.
func TestFanoutListsAGroupsUsersOncePerGateway(t *testing.T) {
	group := []string{"a", "b", "c", "d"}
	r := routes{"gw1": {"a", "b"}, "gw2": {"c", "d"}}
	s := &sent{batches: map[string]event.Push{}}
	items := []event.PushItem{
		item(group, "m1", "gw1/1"),
		item(group, "m2", ""),
		item([]string{"a", "c"}, "single", ""),
		item(group, "m3", "gw2/7"),
		item(group, "m4", ""),
	}
	if err := Fanout(context.Background(), r, s, items); err != nil {
		t.Fatal(err)
	}
	describe := func(p event.Push) string {
		out := ""
		for _, it := range p.Items {
			out += fmt.Sprintf("%v:%s@%s", it.Users, it.Frame.Data, it.Origin)
			for _, n := range it.Next {
				out += fmt.Sprintf("+%s@%s", n.Frame.Data, n.Origin)
			}
			out += " "
		}
		return out
	}
	want := map[string]string{
		"gw1": `[a b]:"m1"@gw1/1+"m2"@ [a]:"single"@ [a b]:"m3"@gw2/7+"m4"@ `,
		"gw2": `[c d]:"m1"@gw1/1+"m2"@ [c]:"single"@ [c d]:"m3"@gw2/7+"m4"@ `,
	}
	for addr, w := range want {
		if got := describe(s.batches[addr]); got != w {
			t.Errorf("%s got  %s\nwant %s", addr, got, w)
		}
	}
}
