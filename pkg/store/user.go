package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/mongo"
	"go.mongodb.org/mongo-driver/mongo/options"

	"easychat/pkg/domain"
)

// Users is the users collection.
const Users = "users"

// CreateUser stores a new user; ErrExists if the id is taken.
func (s *Store) CreateUser(ctx context.Context, u domain.User) error {
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
// hashes, in no particular order. Each is read by _id (a filter on a set of
// ids would read every user on FerretDB's SQLite backend).
func (s *Store) UsersByID(ctx context.Context, ids []string) ([]domain.User, error) {
	found := make([]*domain.User, len(ids))
	users := s.db.Collection(Users)
	err := parallel(len(ids), func(k int) error {
		var u domain.User
		err := users.FindOne(ctx, bson.D{{Key: "_id", Value: ids[k]}},
			options.FindOne().SetProjection(bson.D{{Key: "passwordHash", Value: 0}})).Decode(&u)
		if errors.Is(err, mongo.ErrNoDocuments) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("looking up user %s: %w", ids[k], err)
		}
		found[k] = &u
		return nil
	})
	if err != nil {
		return nil, err
	}
	var out []domain.User
	for _, u := range found {
		if u != nil {
			out = append(out, *u)
		}
	}
	return out, nil
}

// User returns user id.
func (s *Store) User(ctx context.Context, id string) (domain.User, error) {
	return findByID[domain.User](ctx, s.db.Collection(Users), id, "user")
}
