package group

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"testing"

	"easychat/pkg/event"
	"easychat/pkg/frame"
	"easychat/pkg/push"
	"easychat/pkg/store"
)

// memStore keeps groups in memory.
type memStore map[string]store.Group

func (m memStore) CreateGroup(_ context.Context, g store.Group) error {
	g.Members = append([]string{g.Owner}, g.Members...)
	m[g.ID] = g
	return nil
}
func (m memStore) Group(_ context.Context, id string) (store.Group, error) {
	g := m[id]
	g.Members = slices.Clone(g.Members)
	return g, nil
}
func (m memStore) AddMembers(_ context.Context, id string, users ...string) error {
	g := m[id]
	for _, u := range users {
		if !slices.Contains(g.Members, u) {
			g.Members = append(g.Members, u)
		}
	}
	m[id] = g
	return nil
}
func (m memStore) RemoveMembers(_ context.Context, id string, users ...string) error {
	g := m[id]
	g.Members = slices.DeleteFunc(g.Members, func(u string) bool { return slices.Contains(users, u) })
	m[id] = g
	return nil
}
func (m memStore) GroupsOf(context.Context, string) ([]store.Group, error) { return nil, nil }

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
	s := &Service{Store: memStore{}, Routes: everyoneHere{}, Push: out}
	do := func(caller, body string) store.Group {
		t.Helper()
		res, err := s.Handle(ctx, caller, []byte(body))
		if err != nil {
			t.Fatalf("%s: %v", body, err)
		}
		return res.(store.Group)
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
