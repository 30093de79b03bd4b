// Package group manages chat groups: create, add and remove members, list
// members and a user's groups. Only members see or change a group; only the
// owner removes others. A change of membership is pushed to the members' (and
// removed members') sockets as a group.changed data frame (frame.GroupChange),
// so clients show a new group at once instead of at its first message.
//
// Every id is checked (package ident) and every member must be a registered
// user. Groups are bounded: MaxMembers per group, and per user a rate of
// group creations and of members added (shared across replicas through the
// Limiter).
package group

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"easychat/pkg/domain"
	"easychat/pkg/event"
	"easychat/pkg/frame"
	"easychat/pkg/ident"
	"easychat/pkg/limit"
	"easychat/pkg/push"
	"easychat/pkg/reject"
)

// Store is the persistence groups need.
type Store interface {
	CreateGroup(ctx context.Context, g domain.Group) error
	Group(ctx context.Context, id string) (domain.Group, error)
	ChangeMembers(ctx context.Context, id string, change func(domain.Group) ([]string, error)) (before, after domain.Group, err error)
	GroupsOf(ctx context.Context, user string) ([]domain.Group, error)
	UsersByID(ctx context.Context, ids []string) ([]domain.User, error)
}

// Service answers the group function's actions. Routes and Push, when set,
// announce membership changes; an announcement that fails is logged, not an
// error: the change is stored and every client sees it in its next list.
type Service struct {
	Store  Store
	Routes push.Router
	Push   push.Sender
	Log    *slog.Logger

	// Limiter counts CreateLimit (groups created per user) and AddLimit
	// (members added per user, creations included); nil: no rate limits.
	Limiter     limit.Limiter
	CreateLimit limit.Rule
	AddLimit    limit.Rule
	// MaxMembers bounds a group (DefaultMaxMembers when 0).
	MaxMembers int
}

// Request is the body of a call to the group function.
type Request struct {
	Action  string   `json:"action"` // create | add | remove | members | mine
	GroupID string   `json:"groupId"`
	Name    string   `json:"name"`
	Members []string `json:"members"`
}

// Bounds.
const (
	DefaultMaxMembers = 2000
	MaxName           = 64
)

func (s *Service) maxMembers() int {
	if s.MaxMembers > 0 {
		return s.MaxMembers
	}
	return DefaultMaxMembers
}

// Handle runs one action for the verified user caller.
func (s *Service) Handle(ctx context.Context, caller string, body []byte) (any, error) {
	if caller == "" {
		return nil, reject.Unauthorized("login required")
	}
	var req Request
	if err := json.Unmarshal(body, &req); err != nil {
		return nil, reject.Invalid("invalid request: %v", err)
	}
	if len(req.Members) > s.maxMembers() {
		return nil, reject.Invalid("at most %d members", s.maxMembers())
	}
	if err := ident.Users("members", req.Members); err != nil {
		return nil, err
	}
	a, ok := actions[req.Action]
	if !ok {
		return nil, reject.Invalid("unknown action %q (create, add, remove, members, mine)", req.Action)
	}
	if a.onGroup {
		if err := ident.Group("groupId", req.GroupID); err != nil {
			return nil, err
		}
	}
	return a.run(s, ctx, caller, req)
}

// action is one of the function's actions; those onGroup name a group
// whose id Handle has checked.
type action struct {
	onGroup bool
	run     func(s *Service, ctx context.Context, caller string, req Request) (any, error)
}

// result adapts an action that answers a value of type T.
func result[T any](f func(s *Service, ctx context.Context, caller string, req Request) (T, error)) func(*Service, context.Context, string, Request) (any, error) {
	return func(s *Service, ctx context.Context, caller string, req Request) (any, error) {
		v, err := f(s, ctx, caller, req)
		if err != nil {
			return nil, err
		}
		return v, nil
	}
}

var actions = map[string]action{
	"create":  {run: result((*Service).create)},
	"mine":    {run: result((*Service).mine)},
	"members": {onGroup: true, run: result((*Service).members)},
	"add":     {onGroup: true, run: result((*Service).add)},
	"remove":  {onGroup: true, run: result((*Service).remove)},
}

func (s *Service) mine(ctx context.Context, caller string, _ Request) (map[string]any, error) {
	gs, err := s.Store.GroupsOf(ctx, caller)
	if err != nil {
		return nil, err
	}
	if gs == nil {
		gs = []domain.Group{}
	}
	return map[string]any{"groups": gs}, nil
}

func (s *Service) members(ctx context.Context, caller string, req Request) (domain.Group, error) {
	g, err := s.Store.Group(ctx, req.GroupID)
	if err != nil {
		return domain.Group{}, notFound(err, req.GroupID)
	}
	if !g.Has(caller) {
		return domain.Group{}, reject.Forbidden("not a member of group %s", req.GroupID)
	}
	return g, nil
}

func (s *Service) create(ctx context.Context, caller string, req Request) (domain.Group, error) {
	if err := ident.Name("name", req.Name, MaxName); err != nil {
		return domain.Group{}, err
	}
	members := others(req.Members, caller)
	if len(members)+1 > s.maxMembers() {
		return domain.Group{}, reject.Invalid("at most %d members", s.maxMembers())
	}
	if err := s.registered(ctx, members); err != nil {
		return domain.Group{}, err
	}
	if err := limit.Check(ctx, s.Limiter, "group-create:"+caller, s.CreateLimit, "groups created"); err != nil {
		return domain.Group{}, err
	}
	if err := limit.CheckN(ctx, s.Limiter, "group-add:"+caller, len(members), s.AddLimit, "members added"); err != nil {
		return domain.Group{}, err
	}
	g := domain.Group{ID: ident.NewGroup(), Name: req.Name, Owner: caller, Members: members}
	if err := s.Store.CreateGroup(ctx, g); err != nil {
		return domain.Group{}, err
	}
	created, err := s.Store.Group(ctx, g.ID)
	if err != nil {
		return domain.Group{}, err
	}
	s.announce(ctx, created, frame.GroupChange{By: caller, Added: others(created.Members, caller)}, nil)
	return created, nil
}

func (s *Service) add(ctx context.Context, caller string, req Request) (domain.Group, error) {
	if len(req.Members) == 0 {
		return domain.Group{}, reject.Invalid("members is required")
	}
	if err := s.registered(ctx, req.Members); err != nil {
		return domain.Group{}, err
	}
	var added []string
	before, after, err := s.Store.ChangeMembers(ctx, req.GroupID, func(g domain.Group) ([]string, error) {
		if !g.Has(caller) {
			return nil, reject.Forbidden("not a member of group %s", g.ID)
		}
		added = nil
		for _, m := range req.Members {
			if !g.Has(m) && !slices.Contains(added, m) {
				added = append(added, m)
			}
		}
		if len(g.Members)+len(added) > s.maxMembers() {
			return nil, reject.Invalid("at most %d members", s.maxMembers())
		}
		// Counted under the group's lease, so the count is of what is added.
		if err := limit.CheckN(ctx, s.Limiter, "group-add:"+caller, len(added), s.AddLimit, "members added"); err != nil {
			return nil, err
		}
		return append(slices.Clone(g.Members), added...), nil
	})
	if err != nil {
		return domain.Group{}, notFound(err, req.GroupID)
	}
	if len(added) > 0 && len(after.Members) > len(before.Members) {
		s.announce(ctx, after, frame.GroupChange{By: caller, Added: added}, nil)
	}
	return after, nil
}

func (s *Service) remove(ctx context.Context, caller string, req Request) (domain.Group, error) {
	if len(req.Members) == 0 {
		return domain.Group{}, reject.Invalid("members is required")
	}
	var removed []string
	_, after, err := s.Store.ChangeMembers(ctx, req.GroupID, func(g domain.Group) ([]string, error) {
		if !g.Has(caller) {
			return nil, reject.Forbidden("not a member of group %s", g.ID)
		}
		removed = nil
		for _, m := range req.Members {
			if m == g.Owner {
				return nil, reject.Forbidden("the owner cannot be removed")
			}
			if m != caller && caller != g.Owner {
				return nil, reject.Forbidden("only the owner removes other members")
			}
			if g.Has(m) && !slices.Contains(removed, m) {
				removed = append(removed, m)
			}
		}
		return slices.DeleteFunc(slices.Clone(g.Members), func(m string) bool { return slices.Contains(removed, m) }), nil
	})
	if err != nil {
		return domain.Group{}, notFound(err, req.GroupID)
	}
	if len(removed) > 0 {
		s.announce(ctx, after, frame.GroupChange{By: caller, Removed: removed}, removed)
	}
	return after, nil
}

// registered refuses ids that are not registered users.
func (s *Service) registered(ctx context.Context, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	us, err := s.Store.UsersByID(ctx, ids)
	if err != nil {
		return err
	}
	known := make(map[string]bool, len(us))
	for _, u := range us {
		known[u.ID] = true
	}
	var unknown []string
	for _, id := range ids {
		if !known[id] && !slices.Contains(unknown, id) {
			unknown = append(unknown, id)
		}
	}
	if len(unknown) > 0 {
		if len(unknown) > 5 {
			unknown = append(unknown[:5], fmt.Sprintf("and %d more", len(unknown)-5))
		}
		return reject.Invalid("no such users: %s", strings.Join(unknown, ", "))
	}
	return nil
}

// notFound names the group in a not-found refusal.
func notFound(err error, id string) error {
	if reject.Status(err) == reject.Status(reject.ErrNotFound) {
		return reject.NotFound("no group %s", id)
	}
	return err
}

// others is users without user, in order, once each.
func others(users []string, user string) []string {
	var out []string
	for _, u := range users {
		if u != user && !slices.Contains(out, u) {
			out = append(out, u)
		}
	}
	return out
}

// announceTimeout bounds an announcement.
const announceTimeout = 2 * time.Second

// announce pushes c to g's members and to also (removed members).
func (s *Service) announce(ctx context.Context, g domain.Group, c frame.GroupChange, also []string) {
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
