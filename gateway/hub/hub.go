// Package hub is the instance-local index of users to their sockets. A user
// may hold several sockets (devices) on one instance; routing in Redis is per
// user and instance, so the hub reports when a user gains its first socket and
// loses its last one.
package hub

import (
	"errors"
	"sync"

	"easychat/pkg/frame"
)

// Conn is what the hub needs of a socket.
type Conn interface {
	User() string
	// Send queues an encoded frame without blocking.
	Send(b []byte, t frame.Type) bool
	// Close starts a graceful close with a websocket close code.
	Close(code int, text string)
}

// ErrClosed is returned by Add once the hub is shutting down.
var ErrClosed = errors.New("gateway is shutting down")

// Hub indexes sockets by user. Safe for concurrent use.
type Hub struct {
	mu     sync.RWMutex
	users  map[string]map[Conn]*position
	conns  int
	closed bool
}

// New returns an empty hub.
func New() *Hub { return &Hub{users: map[string]map[Conn]*position{}} }

// position is the highest message seq a socket was sent per conversation.
// Pushes are sent in seq order, so one at or below it is a redelivery (a
// function retried after a crash) and is not sent again.
type position struct {
	mu   sync.Mutex
	last map[string]int64
}

func (p *position) advance(conv string, seq int64) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if seq <= p.last[conv] {
		return false
	}
	if p.last == nil {
		p.last = map[string]int64{}
	}
	p.last[conv] = seq
	return true
}

// Add indexes c; first reports whether it is its user's first socket here.
func (h *Hub) Add(c Conn) (first bool, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return false, ErrClosed
	}
	set := h.users[c.User()]
	if set == nil {
		set = map[Conn]*position{}
		h.users[c.User()] = set
		first = true
	}
	if _, ok := set[c]; !ok {
		set[c] = &position{}
		h.conns++
	}
	return first, nil
}

// Remove drops c; last reports whether its user has no socket here any more.
func (h *Hub) Remove(c Conn) (last bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	set := h.users[c.User()]
	if _, ok := set[c]; !ok {
		return false
	}
	delete(set, c)
	h.conns--
	if len(set) == 0 {
		delete(h.users, c.User())
		return true
	}
	return false
}

// Has reports whether user holds a socket here.
func (h *Hub) Has(user string) bool {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return len(h.users[user]) > 0
}

// Sockets returns how many sockets user holds here.
func (h *Hub) Sockets(user string) int {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return len(h.users[user])
}

// Users returns the users holding sockets here.
func (h *Hub) Users() []string {
	h.mu.RLock()
	defer h.mu.RUnlock()
	out := make([]string, 0, len(h.users))
	for u := range h.users {
		out = append(out, u)
	}
	return out
}

// Len returns the number of sockets.
func (h *Hub) Len() int {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return h.conns
}

// Deliver queues the encoded frame b to every socket of users, without
// blocking (a socket whose queue is full is dropped by its Send). It returns
// how many sockets took it and which users no socket here took it for (none
// here, or only closing or dropped ones).
func (h *Hub) Deliver(users []string, b []byte, t frame.Type) (delivered int, missing []string) {
	return h.DeliverMessage(users, b, t, "", 0)
}

// DeliverMessage is Deliver for a chat message with a seq in conv: a socket
// that was already sent that seq (or a later one) of conv does not get it
// again, and counts as having taken it.
func (h *Hub) DeliverMessage(users []string, b []byte, t frame.Type, conv string, seq int64) (delivered int, missing []string) {
	seen := make(map[string]struct{}, len(users))
	h.mu.RLock()
	defer h.mu.RUnlock()
	for _, u := range users {
		if _, dup := seen[u]; dup {
			continue
		}
		seen[u] = struct{}{}
		took := 0
		for c, pos := range h.users[u] {
			if seq > 0 && !pos.advance(conv, seq) {
				took++ // it has this message already
				continue
			}
			if c.Send(b, t) {
				took++
			}
		}
		if took == 0 {
			missing = append(missing, u)
		}
		delivered += took
	}
	return delivered, missing
}

// CloseAll refuses further sockets and starts a graceful close of every
// socket. It returns the sockets it closed.
func (h *Hub) CloseAll(code int, text string) []Conn {
	h.mu.Lock()
	h.closed = true
	all := make([]Conn, 0, h.conns)
	for _, set := range h.users {
		for c := range set {
			all = append(all, c)
		}
	}
	h.mu.Unlock()
	for _, c := range all {
		c.Close(code, text)
	}
	return all
}
