package fileroute

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Quota bounds what one user's links may take of this gateway instance: how
// many transfers run at once, and how fast downloads go. A link is a bearer
// capability for its minutes, and a member may fetch a 20 MiB file again and
// again; without a bound one user could take the instance's bandwidth from
// everyone else's messages and files.
//
// Downloads are shaped, not refused: every download of a user draws from one
// token bucket of bytes, so parallel downloads share it, a range or a 304
// costs only what is sent, and an ordinary user (a burst of thumbnails and a
// few files) never notices it. Transfers over the bound at once wait for a
// turn (a page showing thirty thumbnails over HTTP/2 asks for them together);
// only a user with many waiting already, or one waiting too long, is refused.
type Quota struct {
	rate      rate.Limit // bytes per second; 0: downloads are not shaped
	burst     int
	transfers int // at once per user; 0: no bound

	mu    sync.Mutex
	wait  time.Duration // longest wait for a turn
	users map[string]*userQuota
	swept time.Time
}

type userQuota struct {
	bytes *rate.Limiter // nil when downloads are not shaped
	turns chan struct{} // one per transfer running; nil: no bound
	refs  int           // transfers running or waiting; q.mu
}

// waitingPerTurn is how many transfers may wait for each one running.
const waitingPerTurn = 4

// NewQuota shapes each user's downloads to bytesPerSec with bursts of burst
// bytes, and runs at most transfers of a user at once. Zero turns a bound off.
func NewQuota(bytesPerSec float64, burst, transfers int) *Quota {
	q := &Quota{transfers: transfers, wait: 30 * time.Second, users: map[string]*userQuota{}}
	if bytesPerSec > 0 {
		q.rate, q.burst = rate.Limit(bytesPerSec), max(burst, 32<<10)
	}
	return q
}

// errBusy refuses a transfer of a user with too many running and waiting.
var errBusy = errors.New("too many file transfers at once")

// begin starts a transfer of user, waiting for a turn if as many as allowed
// are running. end must follow a nil error.
func (q *Quota) begin(ctx context.Context, user string) (*userQuota, error) {
	u, err := q.ref(user)
	if err != nil {
		return nil, err
	}
	if u.turns == nil {
		return u, nil
	}
	q.mu.Lock()
	wait := q.wait
	q.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	select {
	case u.turns <- struct{}{}:
		return u, nil
	case <-ctx.Done():
		q.unref(u)
		return nil, errBusy
	}
}

func (q *Quota) ref(user string) (*userQuota, error) {
	now := time.Now()
	q.mu.Lock()
	defer q.mu.Unlock()
	if now.Sub(q.swept) > time.Minute {
		// Forget users with nothing running whose bucket has refilled:
		// a new one would be the same.
		for k, u := range q.users {
			if u.refs == 0 && (u.bytes == nil || u.bytes.TokensAt(now) >= float64(q.burst)) {
				delete(q.users, k)
			}
		}
		q.swept = now
	}
	u := q.users[user]
	if u == nil {
		u = &userQuota{}
		if q.rate > 0 {
			u.bytes = rate.NewLimiter(q.rate, q.burst)
		}
		if q.transfers > 0 {
			u.turns = make(chan struct{}, q.transfers)
		}
		q.users[user] = u
	}
	if q.transfers > 0 && u.refs >= q.transfers*(1+waitingPerTurn) {
		return nil, errBusy
	}
	u.refs++
	return u, nil
}

func (q *Quota) unref(u *userQuota) {
	q.mu.Lock()
	u.refs--
	q.mu.Unlock()
}

// end ends a transfer begun with begin.
func (q *Quota) end(u *userQuota) {
	if q == nil {
		return
	}
	if u.turns != nil {
		<-u.turns
	}
	q.unref(u)
}

// shaped writes through w no faster than lim allows; a write that would
// have to wait past ctx's deadline fails instead.
type shaped struct {
	http.ResponseWriter
	ctx   context.Context
	lim   *rate.Limiter
	burst int
}

func (s *shaped) Write(p []byte) (int, error) {
	n := 0
	for len(p) > 0 {
		k := min(len(p), s.burst)
		if err := s.lim.WaitN(s.ctx, k); err != nil {
			return n, err
		}
		m, err := s.ResponseWriter.Write(p[:k])
		n += m
		if err != nil {
			return n, err
		}
		p = p[k:]
	}
	return n, nil
}

func (s *shaped) Unwrap() http.ResponseWriter { return s.ResponseWriter }
