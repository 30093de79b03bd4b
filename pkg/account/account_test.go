package account

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"easychat/pkg/domain"
	"easychat/pkg/limit"
	"easychat/pkg/reject"
	"easychat/pkg/token"
)

type memUsers struct {
	mu    sync.Mutex
	users map[string]domain.User
	reads int // lookups, i.e. logins that got as far as the password check
}

func (m *memUsers) CreateUser(_ context.Context, u domain.User) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.users[u.ID]; ok {
		return reject.ErrConflict
	}
	m.users[u.ID] = u
	return nil
}

func (m *memUsers) User(_ context.Context, id string) (domain.User, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.reads++
	u, ok := m.users[id]
	if !ok {
		return u, reject.ErrNotFound
	}
	return u, nil
}

func (m *memUsers) UsersByID(context.Context, []string) ([]domain.User, error) { return nil, nil }

func service() (*Service, *memUsers) {
	st := &memUsers{users: map[string]domain.User{}}
	return &Service{Store: st, Tokens: token.New("test-secret-0123456789", time.Hour), Cost: bcrypt.MinCost,
		Limiter:         limit.NewMemory(),
		LoginPerUser:    limit.Rule{N: 3, Per: time.Minute},
		LoginPerAddr:    limit.Rule{N: 5, Per: time.Minute},
		RegisterPerAddr: limit.Rule{N: 2, Per: time.Hour}}, st
}

func TestRegisterChecksIDsAndNames(t *testing.T) {
	s, _ := service()
	ctx := context.Background()
	for _, body := range []string{
		`{"action":"register","userId":"x1#mallory","password":"s3cret-pw"}`,
		`{"action":"register","userId":"bob_alice","password":"s3cret-pw"}`,
		`{"action":"register","userId":"g-group","password":"s3cret-pw"}`,
		`{"action":"register","userId":"` + strings.Repeat("a", 33) + `","password":"s3cret-pw"}`,
		`{"action":"register","userId":"bob","password":"short"}`,
		`{"action":"register","userId":"bob","password":"s3cret-pw","nickname":"\u001b[2Kbob"}`,
		`{"action":"profiles","userIds":["bob","a#b"]}`,
	} {
		caller := ""
		if strings.Contains(body, "profiles") {
			caller = "alice"
		}
		if _, err := s.Handle(ctx, caller, "10.0.0.1", []byte(body)); !errors.Is(err, reject.ErrInvalid) {
			t.Errorf("%s: %v, want invalid", body, err)
		}
	}
	if _, err := s.Handle(ctx, "", "10.0.0.1", []byte(`{"action":"register","userId":"bob","password":"s3cret-pw","nickname":"Bob 🎸"}`)); err != nil {
		t.Fatal(err)
	}
}

func TestAttemptsAreLimitedBeforeThePasswordCheck(t *testing.T) {
	s, st := service()
	ctx := context.Background()
	if _, err := s.Handle(ctx, "", "10.0.0.1", []byte(`{"action":"register","userId":"bob","password":"s3cret-pw"}`)); err != nil {
		t.Fatal(err)
	}
	login := func(addr, pw string) error {
		_, err := s.Handle(ctx, "", addr, []byte(`{"action":"login","userId":"bob","password":"`+pw+`"}`))
		return err
	}
	// Per user id: 3 attempts a minute, from any address.
	for i, addr := range []string{"10.0.0.2", "10.0.0.3", "10.0.0.4"} {
		if err := login(addr, "wrong-pw"); !errors.Is(err, reject.ErrUnauthorized) {
			t.Fatalf("attempt %d: %v", i+1, err)
		}
	}
	before := st.reads
	if err := login("10.0.0.5", "s3cret-pw"); !errors.Is(err, reject.ErrLimited) {
		t.Fatalf("4th attempt for bob: %v, want limited", err)
	}
	if st.reads != before {
		t.Fatal("a limited attempt still read the user (and would have run bcrypt)")
	}
	// Per address: 5 attempts a minute, whatever the user ids.
	for i := range 5 {
		_, _ = s.Handle(ctx, "", "10.9.9.9", []byte(`{"action":"login","userId":"user`+string(rune('a'+i))+`","password":"x-wrong-pw"}`))
	}
	if _, err := s.Handle(ctx, "", "10.9.9.9", []byte(`{"action":"login","userId":"other","password":"x-wrong-pw"}`)); !errors.Is(err, reject.ErrLimited) {
		t.Fatalf("6th attempt from one address: %v", err)
	}
	// Registrations per address: 2 an hour (bob's was the first).
	if _, err := s.Handle(ctx, "", "10.0.0.1", []byte(`{"action":"register","userId":"carol","password":"s3cret-pw"}`)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Handle(ctx, "", "10.0.0.1", []byte(`{"action":"register","userId":"dave","password":"s3cret-pw"}`)); !errors.Is(err, reject.ErrLimited) {
		t.Fatalf("3rd registration: %v", err)
	}
}
