package invoke

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"easychat/pkg/batch"
	"easychat/pkg/sign"
)

// batchServer answers batches like the chat function: every item gets
// {"user","frameId"} back, or a 403 when its user is "mallory". It records
// the size of each request and can hold requests until released.
type batchServer struct {
	t     *testing.T
	sig   *sign.Signer
	mu    sync.Mutex
	sizes []int
	hold  chan struct{} // when set, each request waits for a receive
	fail  int           // answer whole requests with this status
}

func (s *batchServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	claim, err := s.sig.Verify(r.Context(), r.Header, r.URL.Path, body)
	if err != nil || !claim.Component() || claim.User != "" || r.Header.Get(batch.Header) == "" {
		http.Error(w, "not a signed batch", http.StatusUnauthorized)
		return
	}
	var items []batch.Item
	if err := json.Unmarshal(body, &items); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	s.sizes = append(s.sizes, len(items))
	hold, fail := s.hold, s.fail
	s.mu.Unlock()
	if hold != nil {
		<-hold
	}
	if fail != 0 {
		http.Error(w, `{"error":"broker down"}`, fail)
		return
	}
	out := make([]batch.Result, len(items))
	for i, it := range items {
		if it.User == "mallory" {
			out[i] = batch.Result{Status: http.StatusForbidden, Error: "not a member"}
			continue
		}
		d, _ := json.Marshal(map[string]string{"user": it.User, "frameId": it.FrameID})
		out[i] = batch.Result{Status: 200, Data: d}
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(out)
}

func (s *batchServer) requestSizes() []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]int(nil), s.sizes...)
}

func newBatchTest(t *testing.T, o BatchOptions) (*Batcher, *batchServer) {
	sig := sign.New("k")
	srv := &batchServer{t: t, sig: sig}
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	return NewBatcher(New(hs.URL, sig, nil, nil), "chat", o), srv
}

func TestBatcherAloneWhenQuiet(t *testing.T) {
	b, srv := newBatchTest(t, BatchOptions{Inflight: 2})
	for i := range 3 {
		got, err := b.Call(context.Background(), "bob", fmt.Sprint(i), []byte(`{}`))
		if err != nil {
			t.Fatal(err)
		}
		if want := fmt.Sprintf(`{"frameId":"%d","user":"bob"}`, i); string(got) != want {
			t.Fatalf("got %s, want %s", got, want)
		}
	}
	if s := fmt.Sprint(srv.requestSizes()); s != "[1 1 1]" {
		t.Fatalf("sequential calls went as requests of %s, want one each", s)
	}
}

// While the only slot is busy, calls gather and go as one request; each
// caller gets its own answer, including a refusal of its own.
func TestBatcherGathersWhileBusy(t *testing.T) {
	b, srv := newBatchTest(t, BatchOptions{Inflight: 1, Max: 64})
	srv.hold = make(chan struct{})
	type res struct {
		i   int
		got json.RawMessage
		err error
	}
	results := make(chan res, 51)
	call := func(i int, user string) {
		got, err := b.Call(context.Background(), user, fmt.Sprint(i), []byte(`{}`))
		results <- res{i, got, err}
	}
	go call(0, "bob")
	deadline := time.Now().Add(5 * time.Second)
	for len(srv.requestSizes()) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("first call never reached the server")
		}
		time.Sleep(time.Millisecond)
	}
	for i := 1; i <= 50; i++ {
		user := "bob"
		if i == 7 {
			user = "mallory"
		}
		go call(i, user)
	}
	// Let the 50 queue up behind the held request, then release both.
	for {
		b.mu.Lock()
		n := len(b.queue)
		b.mu.Unlock()
		if n == 50 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d calls queued, want 50", n)
		}
		time.Sleep(time.Millisecond)
	}
	srv.hold <- struct{}{}
	srv.hold <- struct{}{}
	for range 51 {
		r := <-results
		if r.i == 7 {
			var se *StatusError
			if !errors.As(r.err, &se) || se.Status != http.StatusForbidden || se.Msg != "not a member" {
				t.Fatalf("call 7: %v, want its own 403", r.err)
			}
			continue
		}
		if r.err != nil {
			t.Fatalf("call %d: %v", r.i, r.err)
		}
		if want := fmt.Sprintf(`{"frameId":"%d","user":"bob"}`, r.i); string(r.got) != want {
			t.Fatalf("call %d got %s", r.i, r.got)
		}
	}
	if s := fmt.Sprint(srv.requestSizes()); s != "[1 50]" {
		t.Fatalf("requests of %s, want [1 50]", s)
	}
}

func TestBatcherFailures(t *testing.T) {
	b, srv := newBatchTest(t, BatchOptions{})
	srv.fail = http.StatusServiceUnavailable
	_, err := b.Call(context.Background(), "bob", "f", []byte(`{}`))
	var se *StatusError
	if !errors.As(err, &se) || se.Status != http.StatusServiceUnavailable || se.Msg != ErrUnavailable.Error() {
		t.Fatalf("whole-request failure: %v", err)
	}
	if _, err := b.Call(context.Background(), "bob", "f", []byte(`not json`)); !errors.As(err, &se) || se.Status != http.StatusBadRequest {
		t.Fatalf("non-JSON data: %v", err)
	}

	gone := NewBatcher(New("http://127.0.0.1:1", sign.New("k"), nil, nil), "chat", BatchOptions{})
	if _, err := gone.Call(context.Background(), "bob", "f", []byte(`{}`)); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("unreachable function: %v", err)
	}
}

// A caller whose context ends while its call waits gets ErrUnavailable at
// once; the batcher goes on serving the others.
func TestBatcherCallerGivesUp(t *testing.T) {
	b, srv := newBatchTest(t, BatchOptions{Inflight: 1})
	srv.hold = make(chan struct{})
	first := make(chan error, 1)
	go func() {
		_, err := b.Call(context.Background(), "bob", "1", []byte(`{}`))
		first <- err
	}()
	deadline := time.Now().Add(5 * time.Second)
	for len(srv.requestSizes()) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("first call never reached the server")
		}
		time.Sleep(time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := b.Call(ctx, "bob", "2", []byte(`{}`)); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("waiting call whose context ended: %v", err)
	}
	srv.hold <- struct{}{} // the first request
	srv.hold <- struct{}{} // the second, still sent: the function dedupes a resend by frame id
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	srv.mu.Lock()
	srv.hold = nil
	srv.mu.Unlock()
	if got, err := b.Call(context.Background(), "bob", "3", []byte(`{}`)); err != nil || string(got) != `{"frameId":"3","user":"bob"}` {
		t.Fatalf("after a caller gave up: %s, %v", got, err)
	}
}

// A socket's group of calls goes in one request, in order, and stays whole
// when other calls queue beside it; a group larger than a request goes in
// consecutive requests, so no part of it overtakes an earlier one.
func TestBatcherGroups(t *testing.T) {
	b, srv := newBatchTest(t, BatchOptions{Inflight: 1, Max: 8})
	items := func(user string, n int) []batch.Item {
		out := make([]batch.Item, n)
		for i := range out {
			out[i] = batch.Item{User: user, FrameID: fmt.Sprint(i), Data: []byte(`{}`)}
		}
		return out
	}
	check := func(what string, got []Answer, user string) {
		t.Helper()
		for i, a := range got {
			want := fmt.Sprintf(`{"frameId":"%d","user":"%s"}`, i, user)
			if user == "mallory" {
				var se *StatusError
				if !errors.As(a.Err, &se) || se.Status != http.StatusForbidden {
					t.Fatalf("%s: answer %d: %v, want its own 403", what, i, a.Err)
				}
				continue
			}
			if a.Err != nil || string(a.Data) != want {
				t.Fatalf("%s: answer %d: %s, %v; want %s", what, i, a.Data, a.Err, want)
			}
		}
	}
	check("group of 5", b.CallGroup(context.Background(), items("bob", 5)), "bob")
	check("group of 20", b.CallGroup(context.Background(), items("carol", 20)), "carol")
	if s := fmt.Sprint(srv.requestSizes()); s != "[5 8 8 4]" {
		t.Fatalf("requests of %s, want [5 8 8 4] (one group whole, then 20 in consecutive requests)", s)
	}

	// While a request is held, a group of 6 and one of 5 queue: they do not
	// fit one request of 8 together, and neither is split.
	srv.mu.Lock()
	srv.sizes, srv.hold = nil, make(chan struct{})
	srv.mu.Unlock()
	type group struct {
		user    string
		answers []Answer
	}
	done := make(chan group, 3)
	go func() {
		d, err := b.Call(context.Background(), "bob", "0", []byte(`{}`))
		done <- group{"bob", []Answer{{d, err}}}
	}()
	waitQueued := func(n int) {
		deadline := time.Now().Add(5 * time.Second)
		for {
			b.mu.Lock()
			q := len(b.queue)
			b.mu.Unlock()
			if q == n && len(srv.requestSizes()) == 1 {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d groups queued, want %d", q, n)
			}
			time.Sleep(time.Millisecond)
		}
	}
	waitQueued(0)
	go func() { done <- group{"dave", b.CallGroup(context.Background(), items("dave", 6))} }()
	waitQueued(1)
	go func() { done <- group{"mallory", b.CallGroup(context.Background(), items("mallory", 5))} }()
	waitQueued(2)
	for range 3 {
		srv.hold <- struct{}{}
	}
	for range 3 {
		g := <-done
		check(g.user, g.answers, g.user)
	}
	if s := fmt.Sprint(srv.requestSizes()); s != "[1 6 5]" {
		t.Fatalf("requests of %s, want [1 6 5]", s)
	}
}
