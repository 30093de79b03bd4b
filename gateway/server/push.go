package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"easychat/gateway/hub"
	"easychat/pkg/frame"
	"easychat/pkg/sign"
)

// PushResult is the answer of POST /internal/push. Missing lists the users
// none of whose sockets here took a frame (no socket, or only closing or
// dropped ones), so the caller can look them up again or leave them to sync.
type PushResult struct {
	Delivered int      `json:"delivered"`
	Missing   []string `json:"missing"`
}

// errPushByUser refuses a push signed as a call for a user.
var errPushByUser = errors.New("a push is a component's call")

// refusePush answers a push whose signature did not verify: 401 for the
// caller's fault, 503 when the nonce could not be checked.
func (s *Server) refusePush(w http.ResponseWriter, r *http.Request, err error) {
	if !sign.Refused(err) && !errors.Is(err, errPushByUser) {
		s.log.Error("checking a push's nonce", "remote", r.RemoteAddr, "err", err)
		http.Error(w, "temporarily unavailable, retry", http.StatusServiceUnavailable)
		return
	}
	s.metrics.AuthFailures.WithLabelValues("push").Inc()
	s.log.Warn("rejected push", "remote", r.RemoteAddr, "err", err)
	http.Error(w, "unauthorized", http.StatusUnauthorized)
}

// servePush delivers a signed batch from a function to local sockets. Each
// item's frame goes out as the caller encoded it, the same bytes queued to
// every socket of its users; queueing never blocks, so a slow client cannot
// hold up the caller.
func (s *Server) servePush(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "POST only", http.StatusMethodNotAllowed)
		return
	}
	// The signature covers the body's hash: check it before reading what an
	// unknown caller sends.
	pending, err := s.signer.Check(r.Header, PushPath)
	if err != nil {
		s.refusePush(w, r, err)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxPushBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			http.Error(w, "push body too large", http.StatusRequestEntityTooLarge)
			return
		}
		http.Error(w, "reading push body", http.StatusBadRequest)
		return
	}
	claim, err := pending.Body(r.Context(), body)
	if err == nil && !claim.Component() {
		err = errPushByUser
	}
	if err != nil {
		s.refusePush(w, r, err)
		return
	}
	// An item's users are listed once for its frame and the Next ones.
	var p struct {
		Items []struct {
			Users  []string        `json:"users"`
			Frame  json.RawMessage `json:"frame"`
			Origin string          `json:"origin"`
			Next   []struct {
				Frame  json.RawMessage `json:"frame"`
				Origin string          `json:"origin"`
			} `json:"next"`
		} `json:"items"`
	}
	if err := json.Unmarshal(body, &p); err != nil {
		http.Error(w, "bad push body: "+err.Error(), http.StatusBadRequest)
		return
	}

	res := PushResult{Missing: []string{}}
	var missing map[string]bool
	for _, it := range p.Items {
		fs := make([]hub.Outgoing, 0, 1+len(it.Next))
		f, err := s.outgoing(it.Frame, it.Origin)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		fs = append(fs, f)
		for _, nx := range it.Next {
			f, err := s.outgoing(nx.Frame, nx.Origin)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			fs = append(fs, f)
		}
		n, miss := s.hub.DeliverAll(it.Users, fs)
		res.Delivered += n
		for _, u := range miss {
			if missing == nil {
				missing = map[string]bool{}
			}
			if !missing[u] {
				missing[u] = true
				res.Missing = append(res.Missing, u)
			}
		}
		s.metrics.PushMissing.Add(float64(len(miss)))
	}
	s.metrics.PushDeliveries.Add(float64(res.Delivered))

	w.Header().Set("Content-Type", "application/json")
	if len(res.Missing) == 0 {
		// The common answer, without the encoder's reflection.
		b := append([]byte(`{"delivered":`), strconv.Itoa(res.Delivered)...)
		_, _ = w.Write(append(b, `,"missing":[]}`+"\n"...))
		return
	}
	_ = json.NewEncoder(w).Encode(res)
}

// outgoing reads a pushed frame b (from a socket named by origin) for the
// hub. The frame is delivered as the caller encoded it (a signed caller is
// trusted to send frames, as it is to name users): decoding it only for its
// type and position, rather than decoding and re-encoding it, is most of
// what a push costs here.
func (s *Server) outgoing(b json.RawMessage, origin string) (hub.Outgoing, error) {
	var head struct {
		FrameType frame.Type `json:"frameType"`
		Method    string     `json:"method"`
		Data      struct {
			ConversationID string `json:"conversationId"`
			Seq            int64  `json:"seq"`
			SendID         string `json:"sendId"`
		} `json:"data"`
	}
	if len(b) == 0 || b[0] != '{' {
		return hub.Outgoing{}, errors.New("bad push frame: not an object")
	}
	if err := json.Unmarshal(b, &head); err != nil {
		return hub.Outgoing{}, fmt.Errorf("bad push frame: %v", err)
	}
	out := hub.Outgoing{B: b, T: head.FrameType}
	if head.Method == frame.MethodPush { // only chat pushes carry a position
		out.Msg = hub.Message{Conv: head.Data.ConversationID, Seq: head.Data.Seq,
			Sender: head.Data.SendID, Origin: s.localSocket(origin)}
	}
	return out, nil
}

// localSocket is the socket id an origin ("<instance>/<socket>") names on
// this instance, or 0.
func (s *Server) localSocket(origin string) uint64 {
	id, ok := strings.CutPrefix(origin, s.instance+"/")
	if !ok {
		return 0
	}
	n, _ := strconv.ParseUint(id, 10, 64)
	return n
}
