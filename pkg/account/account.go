// Package account registers users and logs them in. Passwords are stored as
// bcrypt hashes; a successful login returns the JWT the gateway accepts.
// Each attempt costs a bcrypt, so attempts are limited before it: logins per
// user id and per client address, registrations per client address (counted
// in Redis, so every replica shares the counts).
package account

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"golang.org/x/crypto/bcrypt"

	"easychat/pkg/domain"
	"easychat/pkg/ident"
	"easychat/pkg/limit"
	"easychat/pkg/reject"
	"easychat/pkg/token"
)

// Store is the persistence accounts need.
type Store interface {
	CreateUser(ctx context.Context, u domain.User) error
	User(ctx context.Context, id string) (domain.User, error)
	UsersByID(ctx context.Context, ids []string) ([]domain.User, error)
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

	// Limiter counts the attempts below; nil: no limits.
	Limiter         limit.Limiter
	LoginPerUser    limit.Rule
	LoginPerAddr    limit.Rule
	RegisterPerAddr limit.Rule
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

// Handle runs one action. caller is the verified user ("" when anonymous);
// client is the client's address as the gateway saw it ("" when unknown).
func (s *Service) Handle(ctx context.Context, caller, client string, body []byte) (any, error) {
	var req Request
	if err := json.Unmarshal(body, &req); err != nil {
		return nil, reject.Invalid("invalid request: %v", err)
	}
	switch req.Action {
	case "register":
		return s.register(ctx, client, req)
	case "login":
		return s.login(ctx, client, req)
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
	if err := ident.Users("userIds", ids); err != nil {
		return nil, err
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

func (s *Service) register(ctx context.Context, client string, req Request) (Session, error) {
	if !ident.IsUser(req.UserID) {
		return Session{}, reject.Invalid("userId must be 3-32 letters, digits, '.' or '-', starting with a letter or digit (not g-)")
	}
	if len(req.Password) < 8 || len(req.Password) > 72 {
		return Session{}, reject.Invalid("password must be 8-72 bytes")
	}
	if req.Nickname == "" {
		req.Nickname = req.UserID
	}
	if err := ident.Name("nickname", req.Nickname, 64); err != nil {
		return Session{}, err
	}
	if client != "" {
		if err := limit.Check(ctx, s.Limiter, "register-addr:"+client, s.RegisterPerAddr, "registrations from your address"); err != nil {
			return Session{}, err
		}
	}
	cost := s.Cost
	if cost == 0 {
		cost = bcrypt.DefaultCost
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(req.Password), cost)
	if err != nil {
		return Session{}, fmt.Errorf("hashing password: %w", err)
	}
	err = s.Store.CreateUser(ctx, domain.User{ID: req.UserID, Nickname: req.Nickname, PasswordHash: hash})
	if errors.Is(err, reject.ErrConflict) {
		return Session{}, reject.Conflict("userId %s is taken", req.UserID)
	}
	if err != nil {
		return Session{}, err
	}
	return s.session(req.UserID, req.Nickname)
}

func (s *Service) login(ctx context.Context, client string, req Request) (Session, error) {
	if !ident.IsUser(req.UserID) || len(req.Password) > 72 {
		return Session{}, reject.Unauthorized("wrong userId or password")
	}
	if client != "" {
		if err := limit.Check(ctx, s.Limiter, "login-addr:"+client, s.LoginPerAddr, "login attempts from your address"); err != nil {
			return Session{}, err
		}
	}
	if err := limit.Check(ctx, s.Limiter, "login-user:"+req.UserID, s.LoginPerUser, "login attempts for this user"); err != nil {
		return Session{}, err
	}
	u, err := s.Store.User(ctx, req.UserID)
	if errors.Is(err, reject.ErrNotFound) {
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
