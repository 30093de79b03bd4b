package server

import (
	"net"
	"net/http"
	"strings"
	"sync"
)

// pendingConns bounds the public connections that are not an authenticated
// websocket yet: HTTP requests in progress, idle keep-alive connections and
// handshakes. Each costs a goroutine and buffers while a slow or silent
// client holds it, so an attacker opening many (slowloris) could exhaust the
// gateway without ever presenting a token. Over the bound, in all or from
// one address, a new connection is closed at once. A connection stops
// counting when it is upgraded (hijacked) or closed.
type pendingConns struct {
	max, perIP int
	onRefuse   func()

	mu    sync.Mutex
	n     int
	byIP  map[string]int
	conns map[net.Conn]string // counted connections → their address
}

func newPendingConns(max, perIP int, onRefuse func()) *pendingConns {
	return &pendingConns{max: max, perIP: perIP, onRefuse: onRefuse, byIP: map[string]int{}, conns: map[net.Conn]string{}}
}

// track is an http.Server ConnState hook.
func (p *pendingConns) track(c net.Conn, state http.ConnState) {
	switch state {
	case http.StateNew:
		ip := hostOf(c.RemoteAddr())
		p.mu.Lock()
		if p.n >= p.max || p.byIP[ip] >= p.perIP {
			p.mu.Unlock()
			p.onRefuse()
			_ = c.Close() // net/http then reports StateClosed, which finds nothing to release
			return
		}
		p.n++
		p.byIP[ip]++
		p.conns[c] = ip
		p.mu.Unlock()
	case http.StateHijacked, http.StateClosed:
		p.mu.Lock()
		if ip, ok := p.conns[c]; ok {
			delete(p.conns, c)
			p.n--
			if p.byIP[ip]--; p.byIP[ip] <= 0 {
				delete(p.byIP, ip)
			}
		}
		p.mu.Unlock()
	}
}

func hostOf(a net.Addr) string {
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.IP.String()
	}
	host, _, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	return host
}

// clientAddr is the address of the client of r: the connection's peer, or,
// when that peer is a trusted proxy, the last address in X-Forwarded-For
// that is not one (proxies append; the entries before a trusted one are
// what the client claimed and are not believed).
func (s *Server) clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	if !s.trusted(host) {
		return host
	}
	var hops []string
	for _, v := range r.Header.Values("X-Forwarded-For") {
		for _, h := range strings.Split(v, ",") {
			if h = strings.TrimSpace(h); h != "" {
				hops = append(hops, h)
			}
		}
	}
	for i := len(hops) - 1; i >= 0; i-- {
		if ip := net.ParseIP(hops[i]); ip != nil && !s.trusted(hops[i]) {
			return ip.String()
		}
	}
	return host
}

func (s *Server) trusted(host string) bool {
	ip := net.ParseIP(host)
	if ip == nil {
		return false
	}
	for _, n := range s.cfg.TrustedProxies {
		if n.Contains(ip) {
			return true
		}
	}
	return false
}
