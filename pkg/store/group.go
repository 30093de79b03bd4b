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

// GroupMember holds one document per (group, member): the truth about who
// is in a group. Membership changes are inserts and deletes of whole
// documents, which stay correct when several happen at once: FerretDB
// applies an update as a read and then a write, so concurrent $addToSet on
// one members array lost additions. The group document keeps a copy of the
// members array for fast reads (a push to a group reads one document, not a
// thousand), which every change rebuilds until it matches (syncMembers).
const GroupMember = "group_member"

// membersVersion marks a group document whose members have GroupMember
// documents; older versions kept only the array.
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

type memberDoc struct {
	ID       string `bson:"_id"`
	GroupID  string `bson:"groupId"`
	UserID   string `bson:"userId"`
	JoinedAt int64  `bson:"joinedAt"`
}

func memberID(group, user string) string { return group + "#" + user }

// ErrExists is returned when creating something that already exists.
var ErrExists = reject.ErrConflict

// CreateGroup stores a new group; the owner is always a member.
func (s *Store) CreateGroup(ctx context.Context, g Group) error {
	g.Members = uniq(append([]string{g.Owner}, g.Members...))
	g.CreatedAt = time.Now().UnixMilli()
	g.Version = membersVersion
	if _, err := s.db.Collection(Groups).InsertOne(ctx, g); err != nil {
		if isDup(err) {
			return ErrExists
		}
		return fmt.Errorf("creating group %s: %w", g.ID, err)
	}
	return s.insertMembers(ctx, g.ID, g.CreatedAt, g.Members)
}

// insertMembers adds a document per user; one that exists already is a
// member already.
func (s *Store) insertMembers(ctx context.Context, group string, at int64, users []string) error {
	docs := make([]any, 0, len(users))
	for i, u := range uniq(users) {
		// joinedAt orders members; users added together keep their order.
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
				return fmt.Errorf("adding members to %s: %w", group, err)
			}
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("adding members to %s: %w", group, err)
	}
	return nil
}

// Group returns group id with its members, in the order they joined (the
// group document's copy; see GroupMember).
func (s *Store) Group(ctx context.Context, id string) (Group, error) {
	return findByID[Group](ctx, s.db.Collection(Groups), id, "group")
}

// members lists group id's members from their documents, in the order they
// joined.
func (s *Store) members(ctx context.Context, id string) ([]string, error) {
	cur, err := s.db.Collection(GroupMember).Find(ctx, bson.D{{Key: "groupId", Value: id}},
		options.Find().SetSort(bson.D{{Key: "joinedAt", Value: 1}, {Key: "_id", Value: 1}}).SetProjection(bson.D{{Key: "userId", Value: 1}}))
	if err != nil {
		return nil, fmt.Errorf("listing members of %s: %w", id, err)
	}
	var ms []memberDoc
	if err := cur.All(ctx, &ms); err != nil {
		return nil, fmt.Errorf("decoding members of %s: %w", id, err)
	}
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.UserID
	}
	return out, nil
}

// syncMembers copies the member documents into the group document's array
// and reads them again until the copy matches. A change whose copy lands
// after a newer change's sees that change when it reads again, so the last
// one to finish leaves the array right.
func (s *Store) syncMembers(ctx context.Context, id string) error {
	ms, err := s.members(ctx, id)
	if err != nil {
		return err
	}
	for range 10 {
		if _, err := s.db.Collection(Groups).UpdateOne(ctx, bson.D{{Key: "_id", Value: id}},
			bson.D{{Key: "$set", Value: bson.D{{Key: "members", Value: ms}}}}); err != nil {
			return fmt.Errorf("copying members of %s: %w", id, err)
		}
		again, err := s.members(ctx, id)
		if err != nil {
			return err
		}
		if slices.Equal(again, ms) {
			return nil
		}
		ms = again
	}
	return fmt.Errorf("copying members of %s: still changing", id)
}

// AddMembers adds users to group id.
func (s *Store) AddMembers(ctx context.Context, id string, users ...string) error {
	if err := s.groupExists(ctx, id); err != nil {
		return err
	}
	if err := s.insertMembers(ctx, id, time.Now().UnixMilli(), users); err != nil {
		return err
	}
	return s.syncMembers(ctx, id)
}

// RemoveMembers removes users from group id.
func (s *Store) RemoveMembers(ctx context.Context, id string, users ...string) error {
	if err := s.groupExists(ctx, id); err != nil {
		return err
	}
	ids := make([]string, len(users))
	for i, u := range users {
		ids[i] = memberID(id, u)
	}
	if _, err := s.db.Collection(GroupMember).DeleteMany(ctx,
		bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: ids}}}}); err != nil {
		return fmt.Errorf("removing members from %s: %w", id, err)
	}
	return s.syncMembers(ctx, id)
}

func (s *Store) groupExists(ctx context.Context, id string) error {
	err := s.db.Collection(Groups).FindOne(ctx, bson.D{{Key: "_id", Value: id}},
		options.FindOne().SetProjection(bson.D{{Key: "_id", Value: 1}})).Err()
	if errors.Is(err, mongo.ErrNoDocuments) {
		return ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("reading group %s: %w", id, err)
	}
	return nil
}

// IsMember reports whether user belongs to group id (ErrNotFound if there is
// no such group).
func (s *Store) IsMember(ctx context.Context, id, user string) (bool, error) {
	err := s.db.Collection(GroupMember).FindOne(ctx, bson.D{{Key: "_id", Value: memberID(id, user)}}).Err()
	if err == nil {
		return true, nil
	}
	if !errors.Is(err, mongo.ErrNoDocuments) {
		return false, fmt.Errorf("reading membership of %s in %s: %w", user, id, err)
	}
	return false, s.groupExists(ctx, id)
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
	var out []Group
	if err := cur.All(ctx, &out); err != nil {
		return nil, fmt.Errorf("decoding groups of %s: %w", user, err)
	}
	return out, nil
}

// migrateGroupMembers gives the groups of older versions, which kept only
// the members array, their member documents. Idempotent, and safe to run
// from several processes at once.
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
		if err := s.insertMembers(ctx, g.ID, g.CreatedAt, g.Members); err != nil {
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
