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

// Socket is what the hub needs of a websocket connection (conn.Conn).
type Socket interface {
	User() string
	// Send queues an encoded frame without blocking.
	Send(b []byte, t frame.Type) bool
	// SendMany queues encoded frames of one type, in order, without blocking.
	SendMany(bs [][]byte, t frame.Type) bool
	// Close starts a graceful close with a websocket close code.
	Close(code int, text string)
	// ID identifies the socket on this instance (never 0).
	ID() uint64
}

// ErrClosed is returned by Add once the hub is shutting down.
var ErrClosed = errors.New("gateway is shutting down")

// ErrTooMany is returned by Add when the user holds the most sockets allowed.
var ErrTooMany = errors.New("too many sockets for this user")

// Hub indexes sockets by user. Safe for concurrent use.
type Hub struct {
	mu     sync.RWMutex
	users  map[string][]*socket // most users hold one socket: a slice, not a map
	conns  int
	closed bool
}

// New returns an empty hub.
func New() *Hub { return &Hub{users: map[string][]*socket{}} }

// socket is a Socket and the highest message seq it was sent per
// conversation. Pushes are sent in seq order, so one at or below it is a
// redelivery (a function retried after a crash) and is not sent again.
type socket struct {
	c    Socket
	mu   sync.Mutex
	last []convSeq        // a socket sees few conversations at a time
	more map[string]int64 // the rest, once last is full
}

type convSeq struct {
	conv string
	seq  int64
}

const inlineConvs = 8

func (s *socket) advance(conv string, seq int64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range s.last {
		if s.last[i].conv == conv {
			if seq <= s.last[i].seq {
				return false
			}
			s.last[i].seq = seq
			return true
		}
	}
	if s.more != nil {
		if prev, ok := s.more[conv]; ok {
			if seq <= prev {
				return false
			}
			s.more[conv] = seq
			return true
		}
	}
	if len(s.last) < inlineConvs {
		s.last = append(s.last, convSeq{conv, seq})
		return true
	}
	if s.more == nil {
		s.more = map[string]int64{}
	}
	s.more[conv] = seq
	return true
}

// Add indexes c, unless its user holds max sockets here already (max 0:
// no bound); first reports whether it is its user's first socket here.
func (h *Hub) Add(c Socket, max int) (first bool, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return false, ErrClosed
	}
	set := h.users[c.User()]
	for _, s := range set {
		if s.c == c {
			return false, nil
		}
	}
	if max > 0 && len(set) >= max {
		return false, ErrTooMany
	}
	h.users[c.User()] = append(set, &socket{c: c})
	h.conns++
	return len(set) == 0, nil
}

// Count is the number of sockets user holds here.
func (h *Hub) Count(user string) int {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return len(h.users[user])
}

// Remove drops c; last reports whether its user has no socket here any more.
func (h *Hub) Remove(c Socket) (last bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	set := h.users[c.User()]
	for i, s := range set {
		if s.c != c {
			continue
		}
		h.conns--
		if len(set) == 1 {
			delete(h.users, c.User())
			return true
		}
		copy(set[i:], set[i+1:])
		set[len(set)-1] = nil
		h.users[c.User()] = set[:len(set)-1]
		return false
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
	return h.DeliverMessage(users, b, t, Message{})
}

// Message is what DeliverMessage knows of a chat message's push.
type Message struct {
	Conv   string
	Seq    int64
	Sender string
	Origin uint64 // the ID of the sender's socket it was written on (0: none here)
}

// Outgoing is one encoded frame for DeliverAll, with what DeliverMessage
// knows of it (the zero Message for a frame that is not a chat message).
type Outgoing struct {
	B   []byte
	T   frame.Type
	Msg Message
}

// DeliverAll is DeliverMessage for several frames to the same users, in
// order: each user is looked up once, and each socket gets the frames it
// takes in one SendMany. delivered counts frames × sockets; a user is
// missing when no socket here took any of the frames (and none was the
// origin of one).
func (h *Hub) DeliverAll(users []string, fs []Outgoing) (delivered int, missing []string) {
	if len(fs) == 1 {
		return h.DeliverMessage(users, fs[0].B, fs[0].T, fs[0].Msg)
	}
	oneType := true
	for _, f := range fs {
		oneType = oneType && f.T == fs[0].T
	}
	seen := make(map[string]struct{}, len(users))
	var bs [][]byte
	h.mu.RLock()
	defer h.mu.RUnlock()
	for _, u := range users {
		if _, dup := seen[u]; dup {
			continue
		}
		seen[u] = struct{}{}
		took, origin := 0, false
		for _, s := range h.users[u] {
			bs = bs[:0]
			for _, f := range fs {
				if f.Msg.Seq > 0 && !s.advance(f.Msg.Conv, f.Msg.Seq) {
					took++
					continue
				}
				if u == f.Msg.Sender && f.Msg.Origin != 0 && s.c.ID() == f.Msg.Origin {
					origin = true
					continue
				}
				if !oneType {
					if s.c.Send(f.B, f.T) {
						took++
					}
					continue
				}
				bs = append(bs, f.B)
			}
			if len(bs) > 0 && s.c.SendMany(bs, fs[0].T) {
				took += len(bs)
			}
		}
		if took == 0 && !origin {
			missing = append(missing, u)
		}
		delivered += took
	}
	return delivered, missing
}

// DeliverMessage is Deliver for a chat message with a seq in its
// conversation: a socket that was already sent that seq (or a later one) does
// not get it again, and counts as having taken it; nor does the sender's
// socket it came from, which is not counted at all (but does not make its
// user missing). A user listed twice is served once (for a chat message its
// sockets count twice in delivered).
func (h *Hub) DeliverMessage(users []string, b []byte, t frame.Type, m Message) (delivered int, missing []string) {
	// A repeated user must not get a frame twice. A chat message's seq
	// already guarantees that, socket by socket; other frames need a set.
	var seen map[string]struct{}
	if m.Seq <= 0 && len(users) > 1 {
		seen = make(map[string]struct{}, len(users))
	}
	h.mu.RLock()
	defer h.mu.RUnlock()
	for _, u := range users {
		if seen != nil {
			if _, dup := seen[u]; dup {
				continue
			}
			seen[u] = struct{}{}
		}
		took, origin := 0, false
		for _, s := range h.users[u] {
			if m.Seq > 0 && !s.advance(m.Conv, m.Seq) {
				took++ // it has this message already
				continue
			}
			if u == m.Sender && m.Origin != 0 && s.c.ID() == m.Origin {
				origin = true // the device it was written on: the ack told it
				continue
			}
			if s.c.Send(b, t) {
				took++
			}
		}
		if took == 0 && !origin {
			missing = append(missing, u)
		}
		delivered += took
	}
	return delivered, missing
}

// CloseAll refuses further sockets and starts a graceful close of every
// socket. It returns the sockets it closed.
func (h *Hub) CloseAll(code int, text string) []Socket {
	h.mu.Lock()
	h.closed = true
	all := make([]Socket, 0, h.conns)
	for _, set := range h.users {
		for _, s := range set {
			all = append(all, s.c)
		}
	}
	h.mu.Unlock()
	for _, c := range all {
		c.Close(code, text)
	}
	return all
}
