package server

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"time"

	"easychat/gateway/invoke"
	"easychat/gateway/session"
	"easychat/pkg/ident"
)

// APIPrefix is where the gateway serves the HTTP API: POST /api/<function>
// forwards the JSON body to that function, signed for the user of the bearer
// token (anonymous without one; the function decides what anonymous callers
// may do, e.g. register and login). Clients see one origin and never learn
// what runs behind it.
const APIPrefix = "/api/"

// maxAPIBody bounds one API request body.
const maxAPIBody = 1 << 20

func (s *Server) serveAPI(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		apiError(w, http.StatusMethodNotAllowed, "POST only")
		return
	}
	if s.draining.Load() {
		apiError(w, http.StatusServiceUnavailable, "gateway is shutting down")
		return
	}
	fn := strings.TrimPrefix(r.URL.Path, APIPrefix)
	if !s.apiFunctions[fn] {
		apiError(w, http.StatusNotFound, "no such API: "+fn)
		return
	}
	user := ""
	if tok := bearer(r); tok != "" {
		u, err := s.issuer.Verify(tok)
		if err == nil && !ident.IsUser(u) {
			err = errors.New("token subject is not a user id")
		}
		if err != nil {
			s.metrics.AuthFailures.WithLabelValues("api").Inc()
			apiError(w, http.StatusUnauthorized, "invalid token")
			return
		}
		user = u
	}
	caller := "user:" + user
	if user == "" {
		caller = "addr:" + s.clientAddr(r)
	}
	if !s.apiRates.allow(caller) {
		s.metrics.Rejected.WithLabelValues("api_rate").Inc()
		w.Header().Set("Retry-After", "1")
		apiError(w, http.StatusTooManyRequests, "rate limit exceeded: slow down and retry")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxAPIBody))
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		apiError(w, http.StatusRequestEntityTooLarge, "request body too large")
		return
	case err != nil:
		// Usually the read timeout: a client too slow to send its body.
		apiError(w, http.StatusRequestTimeout, "request body not received in time")
		return
	}
	if len(body) == 0 {
		body = []byte("{}")
	}
	// The answer must go out in time too; a client that does not read it
	// does not hold the handler.
	_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(s.cfg.CallTimeout + 5*time.Second))
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.CallTimeout)
	defer cancel()
	res, err := s.env.Caller.Call(ctx, invoke.Request{Function: fn, User: user, Client: s.clientAddr(r), Body: body})
	var se *invoke.StatusError
	switch {
	case errors.As(err, &se):
		apiError(w, se.Status, se.Msg)
		return
	case err != nil:
		id := session.RequestID()
		s.log.Error("API call failed", "function", fn, "request", id, "err", err)
		apiError(w, http.StatusServiceUnavailable, invoke.ErrUnavailable.Error()+" (request "+id+")")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	if len(res) == 0 {
		res = []byte("{}")
	}
	_, _ = w.Write(res)
}

func bearer(r *http.Request) string {
	h := r.Header.Get("Authorization")
	if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:])
	}
	return ""
}

func apiError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": msg})
}
