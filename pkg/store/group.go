package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/mongo"
	"go.mongodb.org/mongo-driver/mongo/options"

	"easychat/pkg/reject"
)

// Membership has one source of truth: the members array of the group
// document. Every check (who may post, read history, send receipts) and
// every push reads it, by _id. Changes to it are serialized per group by a
// lease (see lock.go): FerretDB applies an update as a read and then a
// write, so two changes racing on one array would lose one of them.
//
// GroupMember holds one document per (group, member), an index of a user's
// groups for GroupsOf only. It is written under the same lease, before the
// array for additions and after it for removals, so it may hold an entry
// the array does not (after a crash) but never lacks one; GroupsOf checks
// each group it finds against the array, so the index never grants anything.
const GroupMember = "group_member"

// membersVersion marks a group whose members have GroupMember documents;
// the first version kept only the array.
const membersVersion = 2

// Group is a chat group; its id is also its conversation id.
type Group struct {
	ID        string   `bson:"_id" json:"groupId"`
	Name      string   `bson:"name" json:"name"`
	Owner     string   `bson:"owner" json:"owner"`
	Members   []string `bson:"members" json:"members"`
	CreatedAt int64    `bson:"createdAt" json:"createdAt"`
	Version   int      `bson:"v" json:"-"`
}

// Has reports whether user is a member.
func (g Group) Has(user string) bool { return slices.Contains(g.Members, user) }

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
func (s *Store) CreateGroup(ctx context.Context, g Group) error {
	g.Members = uniq(append([]string{g.Owner}, g.Members...))
	g.CreatedAt = time.Now().UnixMilli()
	g.Version = membersVersion
	// Index first: a crash in between leaves entries for a group that does
	// not exist, which GroupsOf skips.
	if err := s.indexMembers(ctx, g.ID, g.CreatedAt, g.Members); err != nil {
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
func (s *Store) Group(ctx context.Context, id string) (Group, error) {
	return findByID[Group](ctx, s.db.Collection(Groups), id, "group")
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
func (s *Store) ChangeMembers(ctx context.Context, id string, change func(Group) ([]string, error)) (before, after Group, err error) {
	release, err := s.lock(ctx, "group:"+id)
	if err != nil {
		return Group{}, Group{}, err
	}
	defer release()
	before, err = s.Group(ctx, id)
	if err != nil {
		return Group{}, Group{}, err
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
	if err := s.indexMembers(ctx, id, time.Now().UnixMilli(), added); err != nil {
		return before, before, err
	}
	if _, err := s.db.Collection(Groups).UpdateOne(ctx, bson.D{{Key: "_id", Value: id}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "members", Value: members}}}}); err != nil {
		return before, before, fmt.Errorf("changing members of %s: %w", id, err)
	}
	if len(removed) > 0 {
		ids := make([]string, len(removed))
		for i, u := range removed {
			ids[i] = memberID(id, u)
		}
		if _, err := s.db.Collection(GroupMember).DeleteMany(ctx,
			bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: ids}}}}); err != nil {
			// The array is changed; the stale index entries are skipped by
			// GroupsOf.
			return before, after, fmt.Errorf("unindexing members removed from %s: %w", id, err)
		}
	}
	return before, after, nil
}

// AddMembers adds users to group id.
func (s *Store) AddMembers(ctx context.Context, id string, users ...string) error {
	_, _, err := s.ChangeMembers(ctx, id, func(g Group) ([]string, error) {
		return append(slices.Clone(g.Members), users...), nil
	})
	return err
}

// RemoveMembers removes users from group id.
func (s *Store) RemoveMembers(ctx context.Context, id string, users ...string) error {
	_, _, err := s.ChangeMembers(ctx, id, func(g Group) ([]string, error) {
		return slices.DeleteFunc(slices.Clone(g.Members), func(m string) bool { return slices.Contains(users, m) }), nil
	})
	return err
}

// indexMembers adds an index document per user; one that exists already is
// an entry already.
func (s *Store) indexMembers(ctx context.Context, group string, at int64, users []string) error {
	docs := make([]any, 0, len(users))
	for i, u := range uniq(users) {
		docs = append(docs, memberDoc{ID: memberID(group, u), GroupID: group, UserID: u, JoinedAt: at*1000 + int64(i)})
	}
	if len(docs) == 0 {
		return nil
	}
	_, err := s.db.Collection(GroupMember).InsertMany(ctx, docs, options.InsertMany().SetOrdered(false))
	var bw mongo.BulkWriteException
	if errors.As(err, &bw) && bw.WriteConcernError == nil {
		for _, we := range bw.WriteErrors {
			if !mongo.IsDuplicateKeyError(we) {
				return fmt.Errorf("indexing members of %s: %w", group, err)
			}
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("indexing members of %s: %w", group, err)
	}
	return nil
}

// GroupsOf returns the groups user belongs to.
func (s *Store) GroupsOf(ctx context.Context, user string) ([]Group, error) {
	cur, err := s.db.Collection(GroupMember).Find(ctx, bson.D{{Key: "userId", Value: user}},
		options.Find().SetProjection(bson.D{{Key: "groupId", Value: 1}}))
	if err != nil {
		return nil, fmt.Errorf("listing groups of %s: %w", user, err)
	}
	var ms []memberDoc
	if err := cur.All(ctx, &ms); err != nil {
		return nil, fmt.Errorf("decoding groups of %s: %w", user, err)
	}
	if len(ms) == 0 {
		return nil, nil
	}
	ids := make([]string, len(ms))
	for i, m := range ms {
		ids[i] = m.GroupID
	}
	cur, err = s.db.Collection(Groups).Find(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: ids}}}})
	if err != nil {
		return nil, fmt.Errorf("reading groups of %s: %w", user, err)
	}
	var found []Group
	if err := cur.All(ctx, &found); err != nil {
		return nil, fmt.Errorf("decoding groups of %s: %w", user, err)
	}
	// The index may hold entries the truth no longer has.
	return slices.DeleteFunc(found, func(g Group) bool { return !g.Has(user) }), nil
}

// migrateGroupMembers indexes the members of groups stored by the first
// version, which kept only the array. Idempotent, and safe to run from
// several processes at once.
func (s *Store) migrateGroupMembers(ctx context.Context) error {
	cur, err := s.db.Collection(Groups).Find(ctx, bson.D{{Key: "v", Value: bson.D{{Key: "$exists", Value: false}}}})
	if err != nil {
		return fmt.Errorf("finding groups to migrate: %w", err)
	}
	var old []Group
	if err := cur.All(ctx, &old); err != nil {
		return fmt.Errorf("decoding groups to migrate: %w", err)
	}
	for _, g := range old {
		if err := s.indexMembers(ctx, g.ID, g.CreatedAt, g.Members); err != nil {
			return err
		}
		if _, err := s.db.Collection(Groups).UpdateOne(ctx, bson.D{{Key: "_id", Value: g.ID}},
			bson.D{{Key: "$set", Value: bson.D{{Key: "v", Value: membersVersion}}}}); err != nil {
			return fmt.Errorf("migrating members of %s: %w", g.ID, err)
		}
	}
	return nil
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
