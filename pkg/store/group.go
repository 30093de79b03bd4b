package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"go.mongodb.org/mongo-driver/bson"

	"easychat/pkg/domain"
	"easychat/pkg/frame"
	"easychat/pkg/reject"
)

// Membership has one source of truth: the members array of the group
// document. Every check (who may post, read history, send receipts) and
// every push reads it, by _id. Changes to it are serialized per group by a
// lease (see lock.go): FerretDB applies an update as a read and then a
// write, so two changes racing on one array would lose one of them.
//
// A member's conversation list (lists.go) names the group too, for listing
// a user's groups: it is written before the array on add and after it on
// remove, so it may name a group the array no longer has (after a crash)
// but never misses one; GroupsOf checks what it finds against the array.
//
// GroupMember held one document per (group, member) in earlier versions, an
// index of a user's groups; the lists replace it (migrated at start).
const GroupMember = "group_member"

// membersVersion marks a group whose members have GroupMember documents;
// the first version kept only the array.
const membersVersion = 2

type memberDoc struct {
	ID       string `bson:"_id"`
	GroupID  string `bson:"groupId"`
	UserID   string `bson:"userId"`
	JoinedAt int64  `bson:"joinedAt"`
}

// memberID is the index key of (group, user); ids cannot hold "#" (package ident).
func memberID(group, user string) string { return group + "#" + user }

// ErrExists is returned when creating something that already exists.
var ErrExists = reject.ErrConflict

// CreateGroup stores a new group; the owner is always a member.
func (s *Store) CreateGroup(ctx context.Context, g domain.Group) error {
	g.Members = uniq(append([]string{g.Owner}, g.Members...))
	g.CreatedAt = time.Now().UnixMilli()
	g.Version = membersVersion
	// Lists first: a crash in between leaves entries for a group that does
	// not exist, which GroupsOf skips.
	if err := s.AddToLists(ctx, g.Members, domain.ListEntry{ConversationID: g.ID, ChatType: frame.GroupChat, Name: g.Name}); err != nil {
		return err
	}
	if _, err := s.db.Collection(Groups).InsertOne(ctx, g); err != nil {
		if isDup(err) {
			return ErrExists
		}
		return fmt.Errorf("creating group %s: %w", g.ID, err)
	}
	return nil
}

// Group returns group id with its members, in the order they joined.
func (s *Store) Group(ctx context.Context, id string) (domain.Group, error) {
	return findByID[domain.Group](ctx, s.db.Collection(Groups), id, "group")
}

// IsMember reports whether user belongs to group id (ErrNotFound if there is
// no such group).
func (s *Store) IsMember(ctx context.Context, id, user string) (bool, error) {
	g, err := s.Group(ctx, id)
	if err != nil {
		return false, err
	}
	return g.Has(user), nil
}

// ChangeMembers applies a membership change to group id: change gets the
// group as it is and returns its new members (or an error, which cancels
// the change); no other change of the group runs in between. It returns the
// group before and after.
func (s *Store) ChangeMembers(ctx context.Context, id string, change func(domain.Group) ([]string, error)) (before, after domain.Group, err error) {
	release, err := s.lock(ctx, "group:"+id)
	if err != nil {
		return domain.Group{}, domain.Group{}, err
	}
	defer release()
	before, err = s.Group(ctx, id)
	if err != nil {
		return domain.Group{}, domain.Group{}, err
	}
	members, err := change(before)
	if err != nil {
		return before, before, err
	}
	members = uniq(members)
	var added, removed []string
	for _, m := range members {
		if !before.Has(m) {
			added = append(added, m)
		}
	}
	for _, m := range before.Members {
		if !slices.Contains(members, m) {
			removed = append(removed, m)
		}
	}
	after = before
	after.Members = members
	if len(added)+len(removed) == 0 {
		return before, after, nil
	}
	if err := s.AddToLists(ctx, added, domain.ListEntry{ConversationID: id, ChatType: frame.GroupChat, Name: before.Name}); err != nil {
		return before, before, err
	}
	if _, err := s.db.Collection(Groups).UpdateOne(ctx, bson.D{{Key: "_id", Value: id}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "members", Value: members}}}}); err != nil {
		return before, before, fmt.Errorf("changing members of %s: %w", id, err)
	}
	if len(removed) > 0 {
		if err := s.RemoveFromLists(ctx, removed, id); err != nil {
			// The array is changed; the lists still naming the group are
			// checked against it by GroupsOf.
			return before, after, err
		}
	}
	return before, after, nil
}

// AddMembers adds users to group id.
func (s *Store) AddMembers(ctx context.Context, id string, users ...string) error {
	_, _, err := s.ChangeMembers(ctx, id, func(g domain.Group) ([]string, error) {
		return append(slices.Clone(g.Members), users...), nil
	})
	return err
}

// RemoveMembers removes users from group id.
func (s *Store) RemoveMembers(ctx context.Context, id string, users ...string) error {
	_, _, err := s.ChangeMembers(ctx, id, func(g domain.Group) ([]string, error) {
		return slices.DeleteFunc(slices.Clone(g.Members), func(m string) bool { return slices.Contains(users, m) }), nil
	})
	return err
}

// GroupsOf returns the groups user belongs to, from the user's list (by
// _id), each checked against its group.
func (s *Store) GroupsOf(ctx context.Context, user string) ([]domain.Group, error) {
	entries, err := s.ListOf(ctx, user)
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, e := range entries {
		if e.ChatType == frame.GroupChat {
			ids = append(ids, e.ConversationID)
		}
	}
	found := make([]*domain.Group, len(ids))
	err = parallel(len(ids), func(k int) error {
		g, err := s.Group(ctx, ids[k])
		if errors.Is(err, ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		if g.Has(user) { // the list may still name a group the user left
			found[k] = &g
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	var out []domain.Group
	for _, g := range found {
		if g != nil {
			out = append(out, *g)
		}
	}
	return out, nil
}

func uniq(in []string) []string {
	seen := make(map[string]bool, len(in))
	out := make([]string, 0, len(in))
	for _, s := range in {
		if s != "" && !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}
