package store

import (
	"context"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/bson"

	"easychat/pkg/reject"
)

// Group is a chat group; its id is also its conversation id.
type Group struct {
	ID        string   `bson:"_id" json:"groupId"`
	Name      string   `bson:"name" json:"name"`
	Owner     string   `bson:"owner" json:"owner"`
	Members   []string `bson:"members" json:"members"`
	CreatedAt int64    `bson:"createdAt" json:"createdAt"`
}

// ErrExists is returned when creating something that already exists.
var ErrExists = reject.ErrConflict

// CreateGroup stores a new group; the owner is always a member.
func (s *Store) CreateGroup(ctx context.Context, g Group) error {
	g.Members = uniq(append([]string{g.Owner}, g.Members...))
	g.CreatedAt = time.Now().UnixMilli()
	if _, err := s.db.Collection(Groups).InsertOne(ctx, g); err != nil {
		if isDup(err) {
			return ErrExists
		}
		return fmt.Errorf("creating group %s: %w", g.ID, err)
	}
	return nil
}

// Group returns group id.
func (s *Store) Group(ctx context.Context, id string) (Group, error) {
	return findByID[Group](ctx, s.db.Collection(Groups), id, "group")
}

// AddMembers adds users to group id.
func (s *Store) AddMembers(ctx context.Context, id string, users ...string) error {
	res, err := s.db.Collection(Groups).UpdateOne(ctx, bson.D{{Key: "_id", Value: id}},
		bson.D{{Key: "$addToSet", Value: bson.D{{Key: "members", Value: bson.D{{Key: "$each", Value: users}}}}}})
	if err != nil {
		return fmt.Errorf("adding members to %s: %w", id, err)
	}
	if res.MatchedCount == 0 {
		return ErrNotFound
	}
	return nil
}

// RemoveMembers removes users from group id.
func (s *Store) RemoveMembers(ctx context.Context, id string, users ...string) error {
	res, err := s.db.Collection(Groups).UpdateOne(ctx, bson.D{{Key: "_id", Value: id}},
		bson.D{{Key: "$pullAll", Value: bson.D{{Key: "members", Value: users}}}})
	if err != nil {
		return fmt.Errorf("removing members from %s: %w", id, err)
	}
	if res.MatchedCount == 0 {
		return ErrNotFound
	}
	return nil
}

// IsMember reports whether user belongs to group id.
func (s *Store) IsMember(ctx context.Context, id, user string) (bool, error) {
	g, err := s.Group(ctx, id)
	if err != nil {
		return false, err
	}
	for _, m := range g.Members {
		if m == user {
			return true, nil
		}
	}
	return false, nil
}

// GroupsOf returns the groups user belongs to.
func (s *Store) GroupsOf(ctx context.Context, user string) ([]Group, error) {
	cur, err := s.db.Collection(Groups).Find(ctx, bson.D{{Key: "members", Value: user}})
	if err != nil {
		return nil, fmt.Errorf("listing groups of %s: %w", user, err)
	}
	var out []Group
	if err := cur.All(ctx, &out); err != nil {
		return nil, fmt.Errorf("decoding groups of %s: %w", user, err)
	}
	return out, nil
}

func uniq(in []string) []string {
	seen := make(map[string]bool, len(in))
	out := in[:0]
	for _, s := range in {
		if s != "" && !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}
