package group

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"testing"
	"time"

	"easychat/pkg/domain"
	"easychat/pkg/event"
	"easychat/pkg/frame"
	"easychat/pkg/limit"
	"easychat/pkg/push"
	"easychat/pkg/reject"
)

// memStore keeps groups and registered users in memory.
type memStore struct {
	groups map[string]domain.Group
	users  map[string]bool
}

func newMemStore(users ...string) *memStore {
	m := &memStore{groups: map[string]domain.Group{}, users: map[string]bool{}}
	for _, u := range users {
		m.users[u] = true
	}
	return m
}

func (m *memStore) CreateGroup(_ context.Context, g domain.Group) error {
	g.Members = append([]string{g.Owner}, g.Members...)
	m.groups[g.ID] = g
	return nil
}
func (m *memStore) Group(_ context.Context, id string) (domain.Group, error) {
	g, ok := m.groups[id]
	if !ok {
		return g, reject.ErrNotFound
	}
	g.Members = slices.Clone(g.Members)
	return g, nil
}
func (m *memStore) ChangeMembers(ctx context.Context, id string, change func(domain.Group) ([]string, error)) (domain.Group, domain.Group, error) {
	before, err := m.Group(ctx, id)
	if err != nil {
		return before, before, err
	}
	ms, err := change(before)
	if err != nil {
		return before, before, err
	}
	after := before
	after.Members = ms
	m.groups[id] = after
	return before, after, nil
}
func (m *memStore) GroupsOf(context.Context, string) ([]domain.Group, error) { return nil, nil }
func (m *memStore) UsersByID(_ context.Context, ids []string) ([]domain.User, error) {
	var out []domain.User
	for _, id := range ids {
		if m.users[id] {
			out = append(out, domain.User{ID: id})
		}
	}
	return out, nil
}

// everyoneHere puts every user on one gateway.
type everyoneHere struct{}

func (everyoneHere) Lookup(_ context.Context, users []string) (map[string][]string, error) {
	return map[string][]string{"gw": users}, nil
}

type sent struct{ batches []event.Push }

func (s *sent) Send(_ context.Context, _ string, b event.Push) (push.Result, error) {
	s.batches = append(s.batches, b)
	return push.Result{}, nil
}

// last returns the users and the change of the latest announcement.
func (s *sent) last(t *testing.T) ([]string, frame.GroupChange) {
	t.Helper()
	if len(s.batches) == 0 {
		t.Fatal("nothing announced")
	}
	it := s.batches[len(s.batches)-1].Items[0]
	if it.Frame.Method != frame.MethodGroupChanged {
		t.Fatalf("method %q", it.Frame.Method)
	}
	var c frame.GroupChange
	if err := json.Unmarshal(it.Frame.Data, &c); err != nil {
		t.Fatal(err)
	}
	users := slices.Clone(it.Users)
	sort.Strings(users)
	return users, c
}

func TestMembershipChangesAreAnnounced(t *testing.T) {
	ctx := context.Background()
	out := &sent{}
	s := &Service{Store: newMemStore("alice", "bob", "carol"), Routes: everyoneHere{}, Push: out}
	do := func(caller, body string) domain.Group {
		t.Helper()
		res, err := s.Handle(ctx, caller, []byte(body))
		if err != nil {
			t.Fatalf("%s: %v", body, err)
		}
		return res.(domain.Group)
	}

	g := do("alice", `{"action":"create","name":"team","members":["bob"]}`)
	users, c := out.last(t)
	if fmt.Sprint(users) != "[alice bob]" || c.GroupID != g.ID || c.Name != "team" || c.By != "alice" || fmt.Sprint(c.Added) != "[bob]" {
		t.Fatalf("create announced %+v to %v", c, users)
	}

	do("bob", `{"action":"add","groupId":"`+g.ID+`","members":["carol","bob","carol"]}`)
	users, c = out.last(t)
	if fmt.Sprint(users) != "[alice bob carol]" || c.By != "bob" || fmt.Sprint(c.Added) != "[carol]" || c.Removed != nil {
		t.Fatalf("add announced %+v to %v", c, users)
	}

	n := len(out.batches)
	do("alice", `{"action":"add","groupId":"`+g.ID+`","members":["carol"]}`)
	if len(out.batches) != n {
		t.Fatal("adding a member who is in already was announced")
	}

	do("alice", `{"action":"remove","groupId":"`+g.ID+`","members":["carol"]}`)
	users, c = out.last(t)
	if fmt.Sprint(users) != "[alice bob carol]" || fmt.Sprint(c.Removed) != "[carol]" || c.Added != nil {
		t.Fatalf("remove announced %+v to %v (the removed member must hear of it too)", c, users)
	}
}

// An attacker with an ordinary account: forged ids, strangers, oversized
// groups and floods of additions are refused with a clear error.
func TestHostileRequestsAreRefused(t *testing.T) {
	ctx := context.Background()
	st := newMemStore("alice", "bob", "carol", "mallory")
	s := &Service{Store: st, Limiter: limit.NewMemory(), CreateLimit: limit.Rule{N: 2, Per: time.Hour},
		AddLimit: limit.Rule{N: 3, Per: time.Hour}, MaxMembers: 4}
	call := func(caller, body string) (any, error) { return s.Handle(ctx, caller, []byte(body)) }
	want := func(kind error, caller, body string) {
		t.Helper()
		if _, err := call(caller, body); !errors.Is(err, kind) {
			t.Fatalf("%s %s: %v, want %v", caller, body, err, kind)
		}
	}
	// Ids that would forge a storage key, or name nobody.
	want(reject.ErrInvalid, "mallory", `{"action":"create","name":"x","members":["x1#mallory"]}`)
	want(reject.ErrInvalid, "mallory", `{"action":"create","name":"x","members":["ghost"]}`)
	want(reject.ErrInvalid, "mallory", `{"action":"create","name":"bad\u001b[2Kname","members":["bob"]}`)
	want(reject.ErrInvalid, "mallory", `{"action":"members","groupId":"g-1#x"}`)
	want(reject.ErrInvalid, "mallory", `{"action":"create","name":"big","members":["alice","bob","carol","mallory","dave"]}`)
	if len(st.groups) != 0 {
		t.Fatalf("a refused create stored %d groups", len(st.groups))
	}

	res, err := call("alice", `{"action":"create","name":"team","members":["bob"]}`)
	if err != nil {
		t.Fatal(err)
	}
	g := res.(domain.Group)
	// A stranger can neither read, add to nor remove from it.
	want(reject.ErrForbidden, "mallory", `{"action":"members","groupId":"`+g.ID+`"}`)
	want(reject.ErrForbidden, "mallory", `{"action":"add","groupId":"`+g.ID+`","members":["mallory"]}`)
	want(reject.ErrNotFound, "mallory", `{"action":"add","groupId":"g-nosuchgroup","members":["mallory"]}`)
	// The group's bound holds on add.
	if _, err := call("alice", `{"action":"add","groupId":"`+g.ID+`","members":["carol"]}`); err != nil {
		t.Fatal(err)
	}
	want(reject.ErrInvalid, "bob", `{"action":"add","groupId":"`+g.ID+`","members":["mallory","ghost"]}`)
	// Alice has added bob and carol (2 of 3 per hour); two more is over.
	if _, err := call("alice", `{"action":"create","name":"two","members":["bob","carol"]}`); !errors.Is(err, reject.ErrLimited) {
		t.Fatalf("additions over the rate: %v", err)
	}
	// Group creation has its own rate.
	for i := range 2 {
		_, err := call("carol", `{"action":"create","name":"solo"}`)
		if (i < 2) != (err == nil) {
			t.Fatalf("create %d: %v", i, err)
		}
	}
	want(reject.ErrLimited, "carol", `{"action":"create","name":"solo"}`)
}
