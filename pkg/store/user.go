package store

import (
	"context"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/mongo/options"
)

// Users is the users collection.
const Users = "users"

// User is an account. PasswordHash is a bcrypt hash, never the password.
type User struct {
	ID           string `bson:"_id" json:"userId"`
	Nickname     string `bson:"nickname" json:"nickname"`
	PasswordHash []byte `bson:"passwordHash" json:"-"`
	CreatedAt    int64  `bson:"createdAt" json:"createdAt"`
}

// CreateUser stores a new user; ErrExists if the id is taken.
func (s *Store) CreateUser(ctx context.Context, u User) error {
	u.CreatedAt = time.Now().UnixMilli()
	if _, err := s.db.Collection(Users).InsertOne(ctx, u); err != nil {
		if isDup(err) {
			return ErrExists
		}
		return fmt.Errorf("creating user %s: %w", u.ID, err)
	}
	return nil
}

// UsersByID returns the users among ids that exist, without their password
// hashes, in no particular order.
func (s *Store) UsersByID(ctx context.Context, ids []string) ([]User, error) {
	cur, err := s.db.Collection(Users).Find(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: ids}}}},
		options.Find().SetProjection(bson.D{{Key: "passwordHash", Value: 0}}))
	if err != nil {
		return nil, fmt.Errorf("looking up %d users: %w", len(ids), err)
	}
	var out []User
	if err := cur.All(ctx, &out); err != nil {
		return nil, fmt.Errorf("decoding users: %w", err)
	}
	return out, nil
}

// User returns user id.
func (s *Store) User(ctx context.Context, id string) (User, error) {
	return findByID[User](ctx, s.db.Collection(Users), id, "user")
}
