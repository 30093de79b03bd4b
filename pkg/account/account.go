// Package account registers users and logs them in. Passwords are stored as
// bcrypt hashes; a successful login returns the JWT the gateway accepts.
package account

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"

	"golang.org/x/crypto/bcrypt"

	"easychat/pkg/reject"
	"easychat/pkg/store"
	"easychat/pkg/token"
)

// Store is the persistence accounts need.
type Store interface {
	CreateUser(ctx context.Context, u store.User) error
	User(ctx context.Context, id string) (store.User, error)
	UsersByID(ctx context.Context, ids []string) ([]store.User, error)
}

// MaxProfiles bounds the userIds of one profiles request.
const MaxProfiles = 200

// Profile is what any signed-in user may know of another: the display name.
type Profile struct {
	UserID   string `json:"userId"`
	Nickname string `json:"nickname"`
}

// Service answers the user function's actions.
type Service struct {
	Store  Store
	Tokens *token.Issuer
	// Cost is the bcrypt cost (bcrypt.DefaultCost when 0).
	Cost int
}

// Request is the body of a call to the user function.
type Request struct {
	Action   string   `json:"action"` // register | login | me | profiles
	UserID   string   `json:"userId"`
	UserIDs  []string `json:"userIds"` // profiles
	Password string   `json:"password"`
	Nickname string   `json:"nickname"`
}

// Session is the answer to register and login.
type Session struct {
	UserID   string `json:"userId"`
	Nickname string `json:"nickname"`
	Token    string `json:"token"`
}

// User ids may not contain "_" (single-chat conversation ids join two ids
// with it) or "#" (used in storage keys).
var validID = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9.-]{2,31}$`)

// Handle runs one action. caller is the verified user ("" when anonymous).
func (s *Service) Handle(ctx context.Context, caller string, body []byte) (any, error) {
	var req Request
	if err := json.Unmarshal(body, &req); err != nil {
		return nil, reject.Invalid("invalid request: %v", err)
	}
	switch req.Action {
	case "register":
		return s.register(ctx, req)
	case "login":
		return s.login(ctx, req)
	case "me":
		if caller == "" {
			return nil, reject.Unauthorized("login required")
		}
		u, err := s.Store.User(ctx, caller)
		if err != nil {
			return nil, err
		}
		return map[string]string{"userId": u.ID, "nickname": u.Nickname}, nil
	case "profiles":
		if caller == "" {
			return nil, reject.Unauthorized("login required")
		}
		return s.profiles(ctx, req.UserIDs)
	default:
		return nil, reject.Invalid("unknown action %q (register, login, me, profiles)", req.Action)
	}
}

// profiles answers the display names of the existing users among ids.
func (s *Service) profiles(ctx context.Context, ids []string) (map[string][]Profile, error) {
	if len(ids) > MaxProfiles {
		return nil, reject.Invalid("at most %d userIds", MaxProfiles)
	}
	out := map[string][]Profile{"profiles": {}}
	if len(ids) == 0 {
		return out, nil
	}
	us, err := s.Store.UsersByID(ctx, ids)
	if err != nil {
		return nil, err
	}
	for _, u := range us {
		out["profiles"] = append(out["profiles"], Profile{UserID: u.ID, Nickname: u.Nickname})
	}
	return out, nil
}

func (s *Service) register(ctx context.Context, req Request) (Session, error) {
	if !validID.MatchString(req.UserID) {
		return Session{}, reject.Invalid("userId must be 3-32 letters, digits, '.' or '-'")
	}
	if len(req.Password) < 8 || len(req.Password) > 72 {
		return Session{}, reject.Invalid("password must be 8-72 bytes")
	}
	if len(req.Nickname) > 64 {
		return Session{}, reject.Invalid("nickname must be at most 64 bytes")
	}
	if req.Nickname == "" {
		req.Nickname = req.UserID
	}
	cost := s.Cost
	if cost == 0 {
		cost = bcrypt.DefaultCost
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(req.Password), cost)
	if err != nil {
		return Session{}, fmt.Errorf("hashing password: %w", err)
	}
	err = s.Store.CreateUser(ctx, store.User{ID: req.UserID, Nickname: req.Nickname, PasswordHash: hash})
	if errors.Is(err, store.ErrExists) {
		return Session{}, reject.Conflict("userId %s is taken", req.UserID)
	}
	if err != nil {
		return Session{}, err
	}
	return s.session(req.UserID, req.Nickname)
}

func (s *Service) login(ctx context.Context, req Request) (Session, error) {
	u, err := s.Store.User(ctx, req.UserID)
	if errors.Is(err, store.ErrNotFound) {
		return Session{}, reject.Unauthorized("wrong userId or password")
	}
	if err != nil {
		return Session{}, err
	}
	if bcrypt.CompareHashAndPassword(u.PasswordHash, []byte(req.Password)) != nil {
		return Session{}, reject.Unauthorized("wrong userId or password")
	}
	return s.session(u.ID, u.Nickname)
}

func (s *Service) session(user, nick string) (Session, error) {
	t, err := s.Tokens.Issue(user)
	if err != nil {
		return Session{}, err
	}
	return Session{UserID: user, Nickname: nick, Token: t}, nil
}
