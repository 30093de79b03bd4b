package server

import (
	"errors"
	"net/http"
	"strings"

	"easychat/gateway/conn"
	"easychat/gateway/hub"
	"easychat/gateway/session"
	"easychat/pkg/ident"

	"github.com/gorilla/websocket"
)

// serveWS authenticates before upgrading, so a bad token costs a plain 401
// and no socket.
func (s *Server) serveWS(w http.ResponseWriter, r *http.Request) {
	if s.draining.Load() {
		http.Error(w, "gateway is shutting down", http.StatusServiceUnavailable)
		return
	}
	tok, proto := credentials(r)
	if tok == "" {
		s.unauthorized(w, "missing", "missing token")
		return
	}
	user, err := s.issuer.Verify(tok)
	if err == nil && !ident.IsUser(user) {
		err = errors.New("token subject is not a user id")
	}
	if err != nil {
		s.log.Debug("rejected token", "remote", r.RemoteAddr, "err", err)
		s.unauthorized(w, "invalid", "invalid token")
		return
	}

	if n := s.hub.Count(user); n >= s.cfg.MaxSocketsPerUser {
		s.metrics.Rejected.WithLabelValues("too_many_sockets").Inc()
		http.Error(w, "too many connections for this user", http.StatusTooManyRequests)
		return
	}

	var hdr http.Header
	if proto != "" {
		hdr = http.Header{"Sec-Websocket-Protocol": {proto}}
	}
	s.conns.Add(1)
	ws, err := s.upgrader.Upgrade(w, r, hdr)
	if err != nil {
		s.conns.Done()
		s.log.Debug("websocket upgrade failed", "remote", r.RemoteAddr, "err", err) // already answered
		return
	}
	// The socket lives on a goroutine of its own rather than on this
	// handler's, whose stack net/http has grown while reading the request:
	// an idle socket keeps only what its read pump needs.
	go s.runSocket(ws, user)
}

// runSocket serves an upgraded socket of user until it ends.
func (s *Server) runSocket(ws *websocket.Conn, user string) {
	defer s.conns.Done()
	c := conn.New(ws, user, s.connOpts, s.metrics, s.log)
	first, err := s.hub.Add(c, s.cfg.MaxSocketsPerUser)
	switch {
	case errors.Is(err, hub.ErrClosed):
		// Upgraded just as the drain began.
		c.Close(websocket.CloseGoingAway, "going away")
		c.Run(func([]byte, bool) {})
		return
	case errors.Is(err, hub.ErrTooMany):
		// Several upgrades of one user raced past the check before it.
		s.metrics.Rejected.WithLabelValues("too_many_sockets").Inc()
		c.Close(websocket.ClosePolicyViolation, "too many connections for this user")
		c.Run(func([]byte, bool) {})
		return
	}
	s.metrics.Connections.Inc()
	defer s.metrics.Connections.Dec()
	if first {
		s.bind(user)
	}
	c.Logger().Debug("socket open")

	sess := session.New(s.env, c, c.Logger())
	c.Run(sess.Handle)
	sess.Close()
	if s.hub.Remove(c) {
		s.unbind(user)
	}
	c.Logger().Debug("socket closed")
}

func (s *Server) unauthorized(w http.ResponseWriter, reason, msg string) {
	s.metrics.AuthFailures.WithLabelValues(reason).Inc()
	w.Header().Set("WWW-Authenticate", `Bearer realm="easychat"`)
	http.Error(w, msg, http.StatusUnauthorized)
}

// credentials returns the token a client presented and the subprotocol to
// answer with. Sources, in order: "Authorization: Bearer", ?token=, and
// Sec-WebSocket-Protocol, where browsers (which cannot set headers on a
// websocket) offer e.g. ["easychat", "<jwt>"]. A browser fails the handshake
// unless the server answers with one of the offered protocols, so answer the
// first non-token protocol, or the token itself if nothing else was offered.
func credentials(r *http.Request) (tok, proto string) {
	var offeredTok string
	for _, p := range websocket.Subprotocols(r) {
		if looksLikeJWT(p) {
			if offeredTok == "" {
				offeredTok = p
			}
		} else if proto == "" {
			proto = p
		}
	}
	if proto == "" {
		proto = offeredTok
	}
	if scheme, t, ok := strings.Cut(r.Header.Get("Authorization"), " "); ok && strings.EqualFold(scheme, "Bearer") {
		tok = strings.TrimSpace(t)
	}
	if tok == "" {
		tok = r.URL.Query().Get("token")
	}
	if tok == "" {
		tok = offeredTok
	}
	return tok, proto
}

// looksLikeJWT reports whether s has the shape of a compact JWS: three
// non-empty base64url segments.
func looksLikeJWT(s string) bool {
	parts := strings.Split(s, ".")
	if len(parts) != 3 {
		return false
	}
	for _, p := range parts {
		if p == "" {
			return false
		}
		for _, c := range p {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}
