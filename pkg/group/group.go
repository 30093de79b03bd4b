// Package group manages chat groups: create, add and remove members, list
// members and a user's groups. Only members see or change a group; only the
// owner removes others. A change of membership is pushed to the members' (and
// removed members') sockets as a group.changed data frame (frame.GroupChange), so clients show a
// new group at once instead of at its first message.
package group

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"slices"
	"time"

	"easychat/pkg/event"
	"easychat/pkg/frame"
	"easychat/pkg/push"
	"easychat/pkg/reject"
	"easychat/pkg/store"
)

// Store is the persistence groups need.
type Store interface {
	CreateGroup(ctx context.Context, g store.Group) error
	Group(ctx context.Context, id string) (store.Group, error)
	AddMembers(ctx context.Context, id string, users ...string) error
	RemoveMembers(ctx context.Context, id string, users ...string) error
	GroupsOf(ctx context.Context, user string) ([]store.Group, error)
}

// Service answers the group function's actions. Routes and Push, when set,
// announce membership changes; an announcement that fails is logged, not an
// error: the change is stored and every client sees it in its next list.
type Service struct {
	Store  Store
	Routes push.Router
	Push   push.Sender
	Log    *slog.Logger
}

// Request is the body of a call to the group function.
type Request struct {
	Action  string   `json:"action"` // create | add | remove | members | mine
	GroupID string   `json:"groupId"`
	Name    string   `json:"name"`
	Members []string `json:"members"`
}

// MaxMembers bounds one group.
const MaxMembers = 10000

// Handle runs one action for the verified user caller.
func (s *Service) Handle(ctx context.Context, caller string, body []byte) (any, error) {
	if caller == "" {
		return nil, reject.Unauthorized("login required")
	}
	var req Request
	if err := json.Unmarshal(body, &req); err != nil {
		return nil, reject.Invalid("invalid request: %v", err)
	}
	for _, m := range req.Members {
		if m == "" {
			return nil, reject.Invalid("empty member id")
		}
	}
	switch req.Action {
	case "create":
		if req.Name == "" || len(req.Name) > 64 {
			return nil, reject.Invalid("name must be 1-64 bytes")
		}
		if len(req.Members) >= MaxMembers {
			return nil, reject.Invalid("at most %d members", MaxMembers)
		}
		var b [8]byte
		_, _ = rand.Read(b[:])
		g := store.Group{ID: "g-" + hex.EncodeToString(b[:]), Name: req.Name, Owner: caller, Members: req.Members}
		if err := s.Store.CreateGroup(ctx, g); err != nil {
			return nil, err
		}
		created, err := s.Store.Group(ctx, g.ID)
		if err != nil {
			return nil, err
		}
		var added []string
		for _, m := range created.Members {
			if m != caller {
				added = append(added, m)
			}
		}
		s.announce(ctx, created, frame.GroupChange{By: caller, Added: added}, nil)
		return created, nil
	case "mine":
		gs, err := s.Store.GroupsOf(ctx, caller)
		if err != nil {
			return nil, err
		}
		if gs == nil {
			gs = []store.Group{}
		}
		return map[string]any{"groups": gs}, nil
	}

	g, err := s.member(ctx, req.GroupID, caller)
	if err != nil {
		return nil, err
	}
	change := frame.GroupChange{By: caller}
	switch req.Action {
	case "members":
		return g, nil
	case "add":
		if len(req.Members) == 0 {
			return nil, reject.Invalid("members is required")
		}
		if len(g.Members)+len(req.Members) > MaxMembers {
			return nil, reject.Invalid("at most %d members", MaxMembers)
		}
		if err := s.Store.AddMembers(ctx, g.ID, req.Members...); err != nil {
			return nil, err
		}
		for _, m := range req.Members {
			if !slices.Contains(g.Members, m) && !slices.Contains(change.Added, m) {
				change.Added = append(change.Added, m)
			}
		}
	case "remove":
		if len(req.Members) == 0 {
			return nil, reject.Invalid("members is required")
		}
		for _, m := range req.Members {
			if m == g.Owner {
				return nil, reject.Forbidden("the owner cannot be removed")
			}
			if m != caller && caller != g.Owner {
				return nil, reject.Forbidden("only the owner removes other members")
			}
		}
		if err := s.Store.RemoveMembers(ctx, g.ID, req.Members...); err != nil {
			return nil, err
		}
		for _, m := range req.Members {
			if slices.Contains(g.Members, m) && !slices.Contains(change.Removed, m) {
				change.Removed = append(change.Removed, m)
			}
		}
	default:
		return nil, reject.Invalid("unknown action %q (create, add, remove, members, mine)", req.Action)
	}
	now, err := s.Store.Group(ctx, g.ID)
	if err != nil {
		return nil, err
	}
	if len(change.Added)+len(change.Removed) > 0 {
		s.announce(ctx, now, change, change.Removed)
	}
	return now, nil
}

// announceTimeout bounds an announcement.
const announceTimeout = 2 * time.Second

// announce pushes c to g's members and to also (removed members).
func (s *Service) announce(ctx context.Context, g store.Group, c frame.GroupChange, also []string) {
	if s.Routes == nil || s.Push == nil {
		return
	}
	c.GroupID, c.Name = g.ID, g.Name
	data, err := json.Marshal(c)
	if err != nil {
		return
	}
	to := append(slices.Clone(g.Members), also...)
	f := frame.Frame{FrameType: frame.Data, Method: frame.MethodGroupChanged, FormID: c.By, Data: data}
	// The caller waits for this answer: a gateway that is gone but still
	// routed must not hold it for long.
	ctx, cancel := context.WithTimeout(ctx, announceTimeout)
	defer cancel()
	if err := push.Fanout(ctx, s.Routes, s.Push, []event.PushItem{{Users: to, Frame: f}}); err != nil && s.Log != nil {
		s.Log.Warn("announcing group change failed", "group", g.ID, "err", err)
	}
}

func (s *Service) member(ctx context.Context, id, user string) (store.Group, error) {
	if id == "" {
		return store.Group{}, reject.Invalid("groupId is required")
	}
	g, err := s.Store.Group(ctx, id)
	if err != nil {
		return store.Group{}, err
	}
	for _, m := range g.Members {
		if m == user {
			return g, nil
		}
	}
	return store.Group{}, reject.Forbidden("not a member of group %s", id)
}
