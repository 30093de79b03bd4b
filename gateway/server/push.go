package server

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"

	"easychat/pkg/event"
	"easychat/pkg/frame"
)

// PushResult is the answer of POST /internal/push. Missing lists the users
// none of whose sockets here took a frame (no socket, or only closing or
// dropped ones), so the caller can look them up again or leave them to sync.
type PushResult struct {
	Delivered int      `json:"delivered"`
	Missing   []string `json:"missing"`
}

// servePush delivers a signed batch from a function to local sockets. Each
// item's frame is encoded once and its bytes queued to every socket of its
// users; queueing never blocks, so a slow client cannot hold up the caller.
func (s *Server) servePush(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "POST only", http.StatusMethodNotAllowed)
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
	if _, err := s.signer.Verify(r.Header, PushPath, body); err != nil {
		s.metrics.AuthFailures.WithLabelValues("push").Inc()
		s.log.Warn("rejected unsigned push", "remote", r.RemoteAddr, "err", err)
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	}
	var p event.Push
	if err := json.Unmarshal(body, &p); err != nil {
		http.Error(w, "bad push body: "+err.Error(), http.StatusBadRequest)
		return
	}

	res := PushResult{Missing: []string{}}
	missing := map[string]bool{}
	for _, it := range p.Items {
		b, err := json.Marshal(it.Frame)
		if err != nil {
			http.Error(w, "bad push frame: "+err.Error(), http.StatusBadRequest)
			return
		}
		var pos struct {
			ConversationID string `json:"conversationId"`
			Seq            int64  `json:"seq"`
		}
		if it.Frame.Method == frame.MethodPush {
			_ = json.Unmarshal(it.Frame.Data, &pos)
		}
		n, miss := s.hub.DeliverMessage(it.Users, b, it.Frame.FrameType, pos.ConversationID, pos.Seq)
		res.Delivered += n
		for _, u := range miss {
			if !missing[u] {
				missing[u] = true
				res.Missing = append(res.Missing, u)
			}
		}
		s.metrics.PushMissing.Add(float64(len(miss)))
	}
	s.metrics.PushDeliveries.Add(float64(res.Delivered))

	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(res)
}
