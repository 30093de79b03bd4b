package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"easychat/pkg/domain"
	"easychat/pkg/frame"
)

// api POSTs body to the gateway's HTTP API as token's user ("" anonymous).
func api(t *testing.T, gwAddr, fn, tok string, body any) (int, map[string]any) {
	t.Helper()
	b, _ := json.Marshal(body)
	h := http.Header{"Content-Type": {"application/json"}}
	if tok != "" {
		h.Set("Authorization", "Bearer "+tok)
	}
	code, out := httpPost(t, "http://"+gwAddr+"/api/"+fn, string(b), h)
	var m map[string]any
	if err := json.Unmarshal([]byte(out), &m); err != nil {
		t.Fatalf("%s answered %d %q", fn, code, out)
	}
	return code, m
}

// sync calls conversation.sync over the socket until nothing more is left.
func (c *client) syncAll(seqs map[string]int64, limit int) ([]frame.Push, int) {
	c.t.Helper()
	var all []frame.Push
	pages := 0
	for {
		id := fmt.Sprintf("sync-%d", pages)
		c.send(map[string]any{"frameType": 0, "id": id, "method": frame.MethodSync, "data": map[string]any{"seqs": seqs, "limit": limit}})
		f := c.next(wait, byID(id))
		if f.FrameType == frame.Error {
			c.t.Fatalf("sync: %s", f.ErrMsg)
		}
		var res struct {
			Messages []frame.Push `json:"messages"`
			More     bool         `json:"more"`
		}
		if err := json.Unmarshal(f.Data, &res); err != nil {
			c.t.Fatalf("sync answer %s: %v", f.Data, err)
		}
		pages++
		for _, m := range res.Messages {
			all = append(all, m)
			if m.Seq > seqs[m.ConversationID] {
				seqs[m.ConversationID] = m.Seq
			}
		}
		if !res.More {
			return all, pages
		}
		if len(res.Messages) == 0 {
			c.t.Fatal("sync says more but returned nothing")
		}
	}
}

func waitStored(t *testing.T, conv string, n int) {
	t.Helper()
	st := openSystemStore(t, context.Background())
	deadline := time.Now().Add(60 * time.Second)
	for {
		ms, err := st.Messages(context.Background(), conv, 0, int64(n+10))
		if err != nil {
			t.Fatal(err)
		}
		if len(ms) >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %d of %d messages stored", conv, len(ms), n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestOfflineRecipientSyncsAllMessagesInOrderExactlyOnce(t *testing.T) {
	s := system(t)
	gw := s.Gateways()[0]
	a, b := uid(t, "a"), uid(t, "b")
	ca := dial(t, s, gw, a)
	const n = 100
	for i := 0; i < n; i++ {
		ca.chat(fmt.Sprintf("o%03d", i), frame.SingleChat, b, fmt.Sprintf("offline %03d", i))
	}
	for id, f := range ca.replies(wait, n) {
		if f.FrameType != frame.Ack {
			t.Fatalf("%s: %+v", id, f)
		}
	}
	conv := frame.SingleConversationID(a, b)
	waitStored(t, conv, n)

	cb := dial(t, s, gw, b)
	got, pages := cb.syncAll(map[string]int64{}, 30)
	if len(got) != n || pages != 4 {
		t.Fatalf("synced %d messages in %d pages, want %d in 4", len(got), pages, n)
	}
	for i, p := range got {
		if p.ConversationID != conv || p.Seq != int64(i+1) || p.Msg.Content != fmt.Sprintf("offline %03d", i) || p.SendID != a || p.Msg.MsgID == "" {
			t.Fatalf("synced message %d: %+v", i, p)
		}
	}
	// Nothing was pushed to B for messages sent while it was offline.
	select {
	case f := <-cb.frames:
		t.Fatalf("unexpected frame after sync: %+v", f)
	case <-time.After(200 * time.Millisecond):
	}
	// Knowing everything, a sync returns nothing.
	if again, _ := cb.syncAll(map[string]int64{conv: n}, 30); len(again) != 0 {
		t.Fatalf("sync from seq %d returned %d messages", n, len(again))
	}
}

func TestResentFrameCreatesOneMessage(t *testing.T) {
	s := system(t)
	gw := s.Gateways()[0]
	a, b := uid(t, "a"), uid(t, "b")
	ca, cb := dial(t, s, gw, a), dial(t, s, gw, b)
	waitOnline(t, ca, []string{b})

	var ids []string
	for i := 0; i < 3; i++ {
		ca.chat("same-frame", frame.SingleChat, b, "only once")
		ids = append(ids, ackData(t, ca.next(wait, byID("same-frame"))).MsgID)
	}
	if ids[0] != ids[1] || ids[1] != ids[2] {
		t.Fatalf("resends got different msgIds %v", ids)
	}
	// A reconnect does not change that either.
	ca2 := dial(t, s, gw, a)
	ca2.chat("same-frame", frame.SingleChat, b, "only once")
	if id := ackData(t, ca2.next(wait, byID("same-frame"))).MsgID; id != ids[0] {
		t.Fatalf("resend after reconnect: %s, want %s", id, ids[0])
	}
	ca.chat("next", frame.SingleChat, b, "sentinel")
	ackData(t, ca.next(wait, byID("next")))

	first := pushData(t, cb.next(wait, isPush))
	second := pushData(t, cb.next(wait, isPush))
	if first.Msg.MsgID != ids[0] || first.Seq != 1 || second.Msg.Content != "sentinel" || second.Seq != 2 {
		t.Fatalf("B got %+v then %+v", first, second)
	}
	waitStored(t, frame.SingleConversationID(a, b), 2)
}

// A burst of 1,000 group messages while the transfer function runs two
// replicas behind two connector instances, and one replica is killed midway:
// every member receives seq 1..1000 exactly once, in order.
func TestGroupBurstSurvivesTransferKillInOrder(t *testing.T) {
	s := system(t)
	gw := s.Gateways()[0]
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if _, err := s.AddConnector(ctx, ""); err != nil {
		t.Fatal(err)
	}
	if err := s.Provider.Scale("transfer", 2); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Provider.Scale("transfer", 1) })

	st := openSystemStore(t, ctx)
	owner := uid(t, "owner")
	members := []string{uid(t, "m1"), uid(t, "m2"), uid(t, "m3")}
	group := gid()
	if err := st.CreateGroup(ctx, domain.Group{ID: group, Name: "burst", Owner: owner, Members: members}); err != nil {
		t.Fatal(err)
	}
	co := dial(t, s, gw, owner)
	cs := make([]*client, len(members))
	for i, m := range members {
		cs[i] = dial(t, s, gw, m)
	}
	waitOnline(t, co, members)

	const n = 1000
	for i := 0; i < n; i++ {
		co.chat(fmt.Sprintf("b%04d", i), frame.GroupChat, group, fmt.Sprintf("burst %04d", i))
		if i == n/2 {
			reps := s.Provider.Replicas("transfer")
			if len(reps) == 0 {
				t.Fatal("no transfer replica")
			}
			if err := syscall.Kill(reps[0].PID, syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
		}
	}
	for id, f := range co.replies(2*wait, n) {
		if f.FrameType != frame.Ack {
			t.Fatalf("%s: %+v", id, f)
		}
	}
	for mi, c := range cs {
		for i := 0; i < n; i++ {
			p := pushData(t, c.next(60*time.Second, isPush))
			if p.Seq != int64(i+1) || p.Msg.Content != fmt.Sprintf("burst %04d", i) {
				t.Fatalf("member %d, message %d: seq %d %q", mi, i, p.Seq, p.Msg.Content)
			}
		}
	}
	// And no duplicate arrives after the last one.
	for mi, c := range cs {
		select {
		case f := <-c.frames:
			if isPush(f) {
				t.Fatalf("member %d got a push after seq %d: %s", mi, n, f.Data)
			}
		case <-time.After(300 * time.Millisecond):
		}
	}
}

func TestAccountsGroupsReceiptsUnreadAndHistoryThroughTheAPI(t *testing.T) {
	s := system(t)
	gw := s.Gateways()[0]
	addr := gw.Addr()
	// Registered ids are at most 32 characters.
	short := func(n string) string { return fmt.Sprintf("%s-%d", n, time.Now().UnixNano()%1e12) }
	a, b, c := short("alice"), short("bob"), short("carol")
	tokens := map[string]string{}
	for _, u := range []string{a, b, c} {
		code, res := api(t, addr, "user", "", map[string]any{"action": "register", "userId": u, "password": "secret-" + u, "nickname": "N" + u})
		if code != 200 || res["token"] == "" {
			t.Fatalf("register %s: %d %v", u, code, res)
		}
	}
	if code, res := api(t, addr, "user", "", map[string]any{"action": "register", "userId": a, "password": "whatever1"}); code != 409 {
		t.Fatalf("duplicate register: %d %v", code, res)
	}
	if code, _ := api(t, addr, "user", "", map[string]any{"action": "login", "userId": a, "password": "wrong-password"}); code != 401 {
		t.Fatalf("wrong password: %d", code)
	}
	for _, u := range []string{a, b, c} {
		code, res := api(t, addr, "user", "", map[string]any{"action": "login", "userId": u, "password": "secret-" + u})
		if code != 200 {
			t.Fatalf("login %s: %d %v", u, code, res)
		}
		tokens[u] = res["token"].(string)
	}
	if code, res := api(t, addr, "user", tokens[b], map[string]any{"action": "me"}); code != 200 || res["userId"] != b || res["nickname"] != "N"+b {
		t.Fatalf("me: %d %v", code, res)
	}
	// Display names of others, for a signed-in user only; unknown ids are left out.
	code, res := api(t, addr, "user", tokens[a], map[string]any{"action": "profiles", "userIds": []string{b, c, "nobody-" + a}})
	names := map[string]any{}
	if ps, ok := res["profiles"].([]any); ok {
		for _, p := range ps {
			if p, ok := p.(map[string]any); ok {
				names[fmt.Sprint(p["userId"])] = p["nickname"]
			}
		}
	}
	if code != 200 || len(names) != 2 || names[b] != "N"+b || names[c] != "N"+c {
		t.Fatalf("profiles: %d %v", code, res)
	}
	if code, _ := api(t, addr, "user", "", map[string]any{"action": "profiles", "userIds": []string{b}}); code != 401 {
		t.Fatalf("anonymous profiles: %d", code)
	}

	// The login token opens the websocket.
	ca := dialToken(t, gw, a, tokens[a])
	cb := dialToken(t, gw, b, tokens[b])
	waitOnline(t, ca, []string{b})

	// Single chat: three messages, unread 3, B marks the last one read.
	var last string
	for i := 1; i <= 3; i++ {
		ca.chat(fmt.Sprintf("s%d", i), frame.SingleChat, b, fmt.Sprintf("single %d", i))
		last = ackData(t, ca.next(wait, byID(fmt.Sprintf("s%d", i)))).MsgID
		pushData(t, cb.next(wait, isPush))
	}
	conv := frame.SingleConversationID(a, b)
	waitStored(t, conv, 3)
	if u := unread(t, addr, tokens[b], conv); u != 3 {
		t.Fatalf("unread before markChat = %d, want 3", u)
	}
	// B's device reports what it received; A is told, and its list shows it.
	cb.send(map[string]any{"frameType": 0, "id": "dl1", "method": frame.MethodMarkDelivered,
		"data": map[string]any{"chatType": 2, "recvId": a, "seq": 2}})
	if f := cb.next(wait, byID("dl1")); f.FrameType == frame.Error {
		t.Fatalf("markDelivered: %s", f.ErrMsg)
	}
	df := ca.next(wait, func(f frame.Frame) bool { return f.Method == frame.MethodDelivered })
	var d frame.Delivery
	if err := json.Unmarshal(df.Data, &d); err != nil || d.UserID != b || d.DeliveredSeq != 2 || d.ConversationID != conv || df.FormID != b {
		t.Fatalf("delivery receipt to sender: %+v %s (%v)", df, df.Data, err)
	}
	if pd, pr := listField(t, addr, tokens[a], conv, "peerDeliveredSeq"), listField(t, addr, tokens[a], conv, "peerReadSeq"); pd != 2 || pr != 0 {
		t.Fatalf("sender sees peerDeliveredSeq %v, peerReadSeq %v; want 2, 0", pd, pr)
	}
	// Delivery receipts are for single chats; in a group, read receipts say it.
	cb.send(map[string]any{"frameType": 0, "id": "dl2", "method": frame.MethodMarkDelivered,
		"data": map[string]any{"chatType": 1, "recvId": "g-nope", "seq": 1}})
	if f := cb.next(wait, byID("dl2")); f.FrameType != frame.Error || !strings.Contains(f.ErrMsg, "single chats") {
		t.Fatalf("group markDelivered answered %+v", f)
	}
	cb.send(map[string]any{"frameType": 0, "id": "mk1", "method": frame.MethodMarkChat,
		"data": map[string]any{"chatType": 2, "recvId": a, "conversationId": conv, "msgIds": []string{last}}})
	if f := cb.next(wait, byID("mk1")); f.FrameType == frame.Error {
		t.Fatalf("markChat: %s", f.ErrMsg)
	}
	rf := ca.next(wait, func(f frame.Frame) bool { return f.Method == frame.MethodRead })
	var n frame.ReadNotice
	if err := json.Unmarshal(rf.Data, &n); err != nil || n.ReaderID != b || n.ReadSeq != 3 || n.ConversationID != conv || len(n.MsgIDs) != 1 || n.MsgIDs[0] != last {
		t.Fatalf("receipt to sender: %s (%v)", rf.Data, err)
	}
	// The reader's devices hear of it too (a chat read on one device is not
	// unread on another).
	own := cb.next(wait, func(f frame.Frame) bool { return f.Method == frame.MethodRead })
	if err := json.Unmarshal(own.Data, &n); err != nil || n.ReaderID != b || n.ReadSeq != 3 {
		t.Fatalf("receipt to the reader's devices: %s (%v)", own.Data, err)
	}
	waitFor(t, "unread to reach 0", func() bool { return unread(t, addr, tokens[b], conv) == 0 })
	// The sender has nothing unread in a conversation it wrote last, and sees
	// how far the peer has read.
	if u := unread(t, addr, tokens[a], conv); u != 0 {
		t.Fatalf("sender's unread = %d, want 0", u)
	}
	if pr := listField(t, addr, tokens[a], conv, "peerReadSeq"); pr != 3 {
		t.Fatalf("sender sees peerReadSeq %v, want 3", pr)
	}
	if pd := listField(t, addr, tokens[a], conv, "peerDeliveredSeq"); pd != 3 {
		t.Fatalf("read but not delivered: peerDeliveredSeq %v, want 3", pd)
	}

	// History: newest first, paged with before.
	code, res = api(t, addr, "conversation", tokens[b], map[string]any{"action": "history", "conversationId": conv, "limit": 2})
	if code != 200 || seqsOf(res) != "[3 2]" {
		t.Fatalf("history page 1: %d %v", code, res)
	}
	if _, res := api(t, addr, "conversation", tokens[b], map[string]any{"action": "history", "conversationId": conv, "before": 2, "limit": 2}); seqsOf(res) != "[1]" {
		t.Fatalf("history page 2: %v", res)
	}
	if code, _ := api(t, addr, "conversation", tokens[c], map[string]any{"action": "history", "conversationId": conv}); code != 403 {
		t.Fatalf("outsider reading history: %d", code)
	}

	// Groups: A creates one with B; C is not in it and cannot post or add.
	code, res = api(t, addr, "group", tokens[a], map[string]any{"action": "create", "name": "team", "members": []string{b}})
	if code != 200 {
		t.Fatalf("create group: %d %v", code, res)
	}
	gid := res["groupId"].(string)
	// B is online: the new group is announced to B at once.
	wantChange(t, cb, frame.GroupChange{GroupID: gid, Name: "team", By: a, Added: []string{b}})
	cc := dialToken(t, gw, c, tokens[c])
	cc.chat("c1", frame.GroupChat, gid, "let me in")
	if f := cc.next(wait, byID("c1")); f.FrameType != frame.Error || !strings.Contains(f.ErrMsg, "member") {
		t.Fatalf("non-member post: %+v", f)
	}
	if code, _ := api(t, addr, "group", tokens[c], map[string]any{"action": "add", "groupId": gid, "members": []string{c}}); code != 403 {
		t.Fatalf("non-member adding itself: %d", code)
	}
	if code, _ := api(t, addr, "group", tokens[b], map[string]any{"action": "add", "groupId": gid, "members": []string{c}}); code != 200 {
		t.Fatalf("member adding: %d", code)
	}
	wantChange(t, cc, frame.GroupChange{GroupID: gid, Name: "team", By: b, Added: []string{c}})
	if _, res := api(t, addr, "group", tokens[c], map[string]any{"action": "mine"}); !strings.Contains(fmt.Sprint(res["groups"]), gid) {
		t.Fatalf("carol's groups: %v", res)
	}
	if code, _ := api(t, addr, "group", tokens[b], map[string]any{"action": "remove", "groupId": gid, "members": []string{c}}); code != 403 {
		t.Fatalf("non-owner removing another: %d", code)
	}

	// Group message and its receipt: B reads, A (the sender) is told.
	ca.chat("g1", frame.GroupChat, gid, "hello team")
	gack := ackData(t, ca.next(wait, byID("g1")))
	for _, cl := range []*client{cb, cc} {
		if p := pushData(t, cl.next(wait, isPush)); p.Msg.MsgID != gack.MsgID {
			t.Fatalf("%s got %+v", cl.user, p)
		}
	}
	cb.send(map[string]any{"frameType": 0, "id": "mk2", "method": frame.MethodMarkChat,
		"data": map[string]any{"chatType": 1, "recvId": gid, "msgIds": []string{gack.MsgID}}})
	rf = ca.next(wait, func(f frame.Frame) bool { return f.Method == frame.MethodRead })
	if err := json.Unmarshal(rf.Data, &n); err != nil || n.ReaderID != b || n.ConversationID != gid || n.ReadSeq != 1 {
		t.Fatalf("group receipt: %s", rf.Data)
	}
	waitFor(t, "carol's unread in the group", func() bool { return unread(t, addr, tokens[c], gid) == 1 })
	if u := unread(t, addr, tokens[b], gid); u != 0 {
		t.Fatalf("bob's unread in the group after markChat = %d", u)
	}

	// Owner removes carol; she can no longer post.
	if code, _ := api(t, addr, "group", tokens[a], map[string]any{"action": "remove", "groupId": gid, "members": []string{c}}); code != 200 {
		t.Fatalf("owner removing: %d", code)
	}
	wantChange(t, cc, frame.GroupChange{GroupID: gid, Name: "team", By: a, Removed: []string{c}})
	cc.chat("c2", frame.GroupChat, gid, "still here?")
	if f := cc.next(wait, byID("c2")); f.FrameType != frame.Error {
		t.Fatalf("removed member posting: %+v", f)
	}
}

// wantChange waits for cl's next group.changed frame and checks it is want.
func wantChange(t *testing.T, cl *client, want frame.GroupChange) {
	t.Helper()
	f := cl.next(wait, func(f frame.Frame) bool { return f.Method == frame.MethodGroupChanged })
	var got frame.GroupChange
	if err := json.Unmarshal(f.Data, &got); err != nil || fmt.Sprint(got) != fmt.Sprint(want) || f.FormID != want.By {
		t.Fatalf("%s: group.changed %s (formId %s), want %+v", cl.user, f.Data, f.FormID, want)
	}
}

func dialToken(t *testing.T, gw interface{ URL() string }, user, tok string) *client {
	t.Helper()
	return dialURL(t, gw.URL()+"?token="+tok, user)
}

func unread(t *testing.T, addr, tok, conv string) int {
	t.Helper()
	return int(listField(t, addr, tok, conv, "unread"))
}

// listField returns a numeric field of conv in the user's conversation list.
func listField(t *testing.T, addr, tok, conv, field string) float64 {
	t.Helper()
	v, _ := listEntry(t, addr, tok, conv)[field].(float64)
	return v
}

// listFlag returns a boolean field of conv in the user's conversation list.
func listFlag(t *testing.T, addr, tok, conv, field string) bool {
	t.Helper()
	v, _ := listEntry(t, addr, tok, conv)[field].(bool)
	return v
}

// listEntry returns conv as the user's conversation list shows it.
func listEntry(t *testing.T, addr, tok, conv string) map[string]any {
	t.Helper()
	code, res := api(t, addr, "conversation", tok, map[string]any{"action": "list"})
	if code != 200 {
		t.Fatalf("list: %d %v", code, res)
	}
	list, _ := res["conversations"].([]any)
	for _, x := range list {
		if m := x.(map[string]any); m["conversationId"] == conv {
			return m
		}
	}
	t.Fatalf("conversation %s not in list %v", conv, res)
	return nil
}

func seqsOf(res map[string]any) string {
	var out []int
	ms, _ := res["messages"].([]any)
	for _, x := range ms {
		out = append(out, int(x.(map[string]any)["seq"].(float64)))
	}
	return fmt.Sprint(out)
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// A gateway process that dies without saying goodbye stops showing its users
// online once its route entries expire.
func TestPresenceClearsAfterGatewayProcessIsKilled(t *testing.T) {
	s := system(t)
	gw1 := s.Gateways()[0]
	bin := filepath.Join(t.TempDir(), "gateway")
	build := exec.Command("go", "build", "-o", bin, "./gateway")
	build.Dir = repoRoot(t)
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the gateway: %v\n%s", err, out)
	}
	pub, internal := freeAddr(t), freeAddr(t)
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(),
		"GATEWAY_ADDR="+pub, "GATEWAY_INTERNAL_ADDR="+internal, "FAAS_URL="+s.FaasURL, "REDIS_URL="+s.RedisURL,
		"JWT_SECRET="+s.JWTSecret(), "INTERNAL_KEY="+s.InternalKey(), "GATEWAY_ROUTE_TTL=3s")
	cmd.Env = append(cmd.Env, s.S3Env()...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _, _ = cmd.Process.Wait() })
	waitFor(t, "the gateway process to listen", func() bool {
		res, err := http.Get("http://" + pub + "/readyz")
		if err != nil {
			return false
		}
		res.Body.Close()
		return res.StatusCode == 200
	})

	a, b := uid(t, "a"), uid(t, "b")
	ca := dial(t, s, gw1, a)
	dialURL(t, "ws://"+pub+"/ws?token="+tokenFor(t, s, b), b)
	waitOnline(t, ca, []string{b})

	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	for {
		if !online(t, ca, b) {
			break
		}
		if time.Since(killed) > 15*time.Second {
			t.Fatal("user still online 15 s after its gateway was killed (route TTL 3 s)")
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("presence cleared %v after the kill", time.Since(killed).Round(time.Millisecond))
}

func online(t *testing.T, c *client, user string) bool {
	t.Helper()
	id := fmt.Sprintf("on-%d", time.Now().UnixNano())
	c.send(map[string]any{"frameType": 0, "id": id, "method": frame.MethodOnline, "data": map[string]any{"userIds": []string{user}}})
	f := c.next(wait, byID(id))
	var res struct {
		Online map[string]bool `json:"online"`
	}
	if err := json.Unmarshal(f.Data, &res); err != nil {
		t.Fatalf("user.online: %+v", f)
	}
	return res.Online[user]
}

func freeAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}
