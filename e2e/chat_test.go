package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"easychat/pkg/batch"
	"easychat/pkg/domain"
	"easychat/pkg/frame"
	"easychat/pkg/sign"
)

const wait = 30 * time.Second

func TestSingleChatDeliversEveryField(t *testing.T) {
	s := system(t)
	gw := s.Gateways()[0]
	a, b := uid(t, "a"), uid(t, "b")
	ca, cb := dial(t, s, gw, a), dial(t, s, gw, b)

	before := time.Now().UnixMilli()
	// The sender's formId is forged: the server must use the token's user.
	ca.send(map[string]any{"frameType": 0, "id": "f1", "method": frame.MethodChat, "formId": b,
		"data": map[string]any{"chatType": 2, "recvId": b, "msg": map[string]any{"mType": 0, "content": "Hello!"}}})
	ack := ackData(t, ca.next(wait, byID("f1")))
	conv := frame.SingleConversationID(a, b)
	if ack.ConversationID != conv {
		t.Fatalf("ack conversation %q, want %q", ack.ConversationID, conv)
	}

	f := cb.next(wait, isPush)
	if f.FormID != a {
		t.Fatalf("push formId %q, want the authenticated sender %q", f.FormID, a)
	}
	p := pushData(t, f)
	if p.ConversationID != conv || p.ChatType != frame.SingleChat || p.SendID != a || p.RecvID != b ||
		p.Seq != 1 || p.Msg.MsgID != ack.MsgID || p.Msg.MType != 0 || p.Msg.Content != "Hello!" {
		t.Fatalf("push %+v", p)
	}
	if p.SendTime < before || p.SendTime > time.Now().UnixMilli() {
		t.Fatalf("sendTime %d outside [%d, now]", p.SendTime, before)
	}

	// And back: B answers A, seq continues in the same conversation.
	cb.chat("r1", frame.SingleChat, a, "Hi A")
	ackData(t, cb.next(wait, byID("r1")))
	back := pushData(t, ca.next(wait, isPush))
	if back.Seq != 2 || back.SendID != b || back.Msg.Content != "Hi A" || back.ConversationID != conv {
		t.Fatalf("reply push %+v", back)
	}
}

func TestGroupChatFansOutToFiftyMembers(t *testing.T) {
	s := system(t)
	gw := s.Gateways()[0]
	ctx := context.Background()
	st := openSystemStore(t, ctx)

	owner := uid(t, "owner")
	members := make([]string, 49)
	for i := range members {
		members[i] = uid(t, fmt.Sprintf("m%02d", i))
	}
	group := gid()
	if err := st.CreateGroup(ctx, domain.Group{ID: group, Name: "fifty", Owner: owner, Members: members}); err != nil {
		t.Fatal(err)
	}
	co := dial(t, s, gw, owner)
	clients := make([]*client, len(members))
	for i, m := range members {
		clients[i] = dial(t, s, gw, m)
	}
	waitOnline(t, co, append([]string{owner}, members...))

	co.chat("g1", frame.GroupChat, group, "hello fifty")
	ack := ackData(t, co.next(wait, byID("g1")))
	for i, c := range clients {
		p := pushData(t, c.next(wait, isPush))
		if p.ConversationID != group || p.ChatType != frame.GroupChat || p.SendID != owner || p.Seq != 1 ||
			p.Msg.MsgID != ack.MsgID || p.Msg.Content != "hello fifty" {
			t.Fatalf("member %d got %+v", i, p)
		}
	}
	// The sender is not pushed its own message.
	select {
	case f := <-co.frames:
		if isPush(f) {
			t.Fatalf("sender got its own group message pushed: %+v", f)
		}
	case <-time.After(300 * time.Millisecond):
	}

	// Somebody outside the group cannot post to it.
	out := dial(t, s, gw, uid(t, "outsider"))
	out.chat("x1", frame.GroupChat, group, "let me in")
	if f := out.next(wait, byID("x1")); f.FrameType != frame.Error || !strings.Contains(f.ErrMsg, "member") {
		t.Fatalf("non-member post answered %+v", f)
	}
}

// waitOnline blocks until the registry shows every user online (their
// gateway registered them), using the user.online method.
func waitOnline(t *testing.T, c *client, users []string) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for i := 0; ; i++ {
		id := fmt.Sprintf("online-%d", i)
		c.send(map[string]any{"frameType": 0, "id": id, "method": frame.MethodOnline, "data": map[string]any{"userIds": users}})
		f := c.next(wait, byID(id))
		var res struct {
			Online map[string]bool `json:"online"`
		}
		if err := jsonUnmarshal(f.Data, &res); err != nil {
			t.Fatalf("user.online answer %+v: %v", f, err)
		}
		all := true
		for _, u := range users {
			all = all && res.Online[u]
		}
		if all {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("users not online: %v", res.Online)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestChatAcrossGatewayInstancesAndDevices(t *testing.T) {
	s := system(t)
	gw1 := s.Gateways()[0]
	gw2, err := s.AddGateway(context.Background(), "", "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = gw2.Stop() })

	a, b := uid(t, "a"), uid(t, "b")
	ca := dial(t, s, gw1, a)
	phone := dial(t, s, gw2, b)  // B's first device, on the other instance
	laptop := dial(t, s, gw1, b) // and a second device on A's instance
	waitOnline(t, ca, []string{a, b})

	ca.chat("x", frame.SingleChat, b, "to every device")
	ack := ackData(t, ca.next(wait, byID("x")))
	for name, c := range map[string]*client{"phone on gw2": phone, "laptop on gw1": laptop} {
		p := pushData(t, c.next(wait, isPush))
		if p.Msg.MsgID != ack.MsgID || p.SendID != a || p.Msg.Content != "to every device" {
			t.Fatalf("%s got %+v", name, p)
		}
	}

	// B answers from the laptop: A gets it, and so does B's phone (what B
	// wrote shows on all B's devices), but not the laptop it came from.
	laptop.chat("y", frame.SingleChat, a, "from the laptop")
	reply := ackData(t, laptop.next(wait, byID("y")))
	for name, c := range map[string]*client{"A": ca, "B's phone": phone} {
		p := pushData(t, c.next(wait, isPush))
		if p.Msg.MsgID != reply.MsgID || p.SendID != b || p.Seq != 2 {
			t.Fatalf("%s got %+v", name, p)
		}
	}
	ca.chat("z", frame.SingleChat, b, "third")
	ackData(t, ca.next(wait, byID("z")))
	// Pushes reach a socket in seq order: the laptop's next one is seq 3, so
	// it was not sent its own seq 2.
	if p := pushData(t, laptop.next(wait, isPush)); p.Seq != 3 || p.Msg.Content != "third" {
		t.Fatalf("laptop's next push: %+v", p)
	}
	// Nor does A's own "third" come back to the socket it was written on.
	phone.chat("w", frame.SingleChat, a, "fourth")
	ackData(t, phone.next(wait, byID("w")))
	if p := pushData(t, ca.next(wait, isPush)); p.Seq != 4 || p.Msg.Content != "fourth" {
		t.Fatalf("A's next push: %+v", p)
	}
}

func TestBadFramesGetErrorsAndTheSocketStaysUsable(t *testing.T) {
	s := system(t)
	gw := s.Gateways()[0]
	a, b := uid(t, "a"), uid(t, "b")
	ca, cb := dial(t, s, gw, a), dial(t, s, gw, b)

	isErr := func(f frame.Frame) bool { return f.FrameType == frame.Error }

	ca.sendRaw([]byte(`{"frameType":0,"id":"m1","method":`))
	if f := ca.next(wait, isErr); f.ErrMsg == "" {
		t.Fatalf("malformed JSON: %+v", f)
	}
	ca.send(map[string]any{"frameType": 0, "id": "u1", "method": "conversation.nope", "data": map[string]any{}})
	if f := ca.next(wait, byID("u1")); f.FrameType != frame.Error || !strings.Contains(f.ErrMsg, "method") {
		t.Fatalf("unknown method: %+v", f)
	}
	big := strings.Repeat("x", 200<<10)
	ca.chat("big1", frame.SingleChat, b, big)
	if f := ca.next(wait, isErr); !strings.Contains(strings.ToLower(f.ErrMsg), "large") && !strings.Contains(strings.ToLower(f.ErrMsg), "size") {
		t.Fatalf("oversized frame: %+v", f)
	}
	ca.chat("t1", 5, b, "bad type")
	if f := ca.next(wait, byID("t1")); f.FrameType != frame.Error || !strings.Contains(f.ErrMsg, "chatType") {
		t.Fatalf("wrong chatType: %+v", f)
	}

	// After all that, the same socket still chats.
	ca.chat("ok1", frame.SingleChat, b, "still here")
	ackData(t, ca.next(wait, byID("ok1")))
	if p := pushData(t, cb.next(wait, isPush)); p.Msg.Content != "still here" || p.Seq != 1 {
		t.Fatalf("push after bad frames: %+v", p)
	}
}

func TestNoOrBadTokenIsRefusedBeforeUpgrade(t *testing.T) {
	s := system(t)
	gw := s.Gateways()[0]
	for name, h := range map[string]http.Header{
		"none":  nil,
		"bad":   {"Authorization": {"Bearer not.a.jwt"}},
		"other": {"Authorization": {"Bearer " + otherKeyToken(t)}},
	} {
		_, res, err := websocket.DefaultDialer.Dial(gw.URL(), h)
		if err == nil {
			t.Fatalf("%s token: upgraded", name)
		}
		if res == nil || res.StatusCode != http.StatusUnauthorized {
			t.Fatalf("%s token: response %v, want 401", name, res)
		}
	}
}

func TestFunctionsRejectUnsignedAndForgedCalls(t *testing.T) {
	s := system(t)
	body := `{"chatType":2,"recvId":"bob","msg":{"mType":0,"content":"hi"}}`
	// Unsigned, as anybody reaching the FaaS gateway could.
	if code, out := httpPost(t, s.FaasURL+"/function/chat", body, http.Header{"X-Easychat-User": {"alice"}}); code != http.StatusUnauthorized {
		t.Fatalf("unsigned chat call: %d %s", code, out)
	}
	// Signed with a key that is not the system's.
	forged := sign.New("not-the-key-0123456789").Headers("/function/chat", sign.ForUser("alice"), []byte(body))
	if code, out := httpPost(t, s.FaasURL+"/function/chat", body, forged); code != http.StatusUnauthorized {
		t.Fatalf("forged chat call: %d %s", code, out)
	}
	// A real signature for one function does not open another.
	h := sign.New(s.InternalKey()).Headers("/function/chat", sign.ForUser("alice"), []byte(body))
	if code, out := httpPost(t, s.FaasURL+"/function/transfer", body, h); code != http.StatusUnauthorized {
		t.Fatalf("chat signature on transfer: %d %s", code, out)
	}
	if code, out := httpPost(t, s.FaasURL+"/function/chat", body, h); code != http.StatusOK {
		t.Fatalf("properly signed call: %d %s", code, out)
	}
	// The same call again, as someone who captured it would replay it.
	if code, out := httpPost(t, s.FaasURL+"/function/chat", body, h); code != http.StatusUnauthorized || !strings.Contains(out, "replayed") {
		t.Fatalf("replayed call: %d %s", code, out)
	}

	// Batches (as the gateway sends when busy) name their users inside the
	// signed body; they must be signed by the system's key, as a component.
	items := `[{"user":"mallory","frameId":"x1","data":` + body + `}]`
	batchHeader := http.Header{batch.Header: {"1"}}
	for name, hdr := range map[string]http.Header{
		"unsigned batch":                {batch.Header: {"1"}},
		"forged batch":                  signed("not-the-key-0123456789", "/function/chat", sign.Component, items, batchHeader),
		"batch signed for a user":       signed(s.InternalKey(), "/function/chat", sign.ForUser("alice"), items, batchHeader),
		"batch signed for an anonymous": signed(s.InternalKey(), "/function/chat", sign.ForUser(""), items, batchHeader),
		"chat-signed batch on mark":     signed(s.InternalKey(), "/function/chat", sign.Component, items, batchHeader),
		"batch header added unsigned":   addHeader(signed(s.InternalKey(), "/function/chat", sign.Component, items, nil), batch.Header, "1"),
	} {
		url := s.FaasURL + "/function/chat"
		if name == "chat-signed batch on mark" {
			url = s.FaasURL + "/function/mark"
		}
		if code, out := httpPost(t, url, items, hdr); code != http.StatusUnauthorized {
			t.Fatalf("%s: %d %s", name, code, out)
		}
	}
	hdr := signed(s.InternalKey(), "/function/chat", sign.Component, items, batchHeader)
	code, out := httpPost(t, s.FaasURL+"/function/chat", items, hdr)
	var res []batch.Result
	if code != http.StatusOK || json.Unmarshal([]byte(out), &res) != nil || len(res) != 1 || res[0].Status != http.StatusOK {
		t.Fatalf("properly signed batch: %d %s", code, out)
	}
}

// Killing the transfer function's process mid-stream must lose nothing: the
// connector retries until the runtime restarts it, and storage dedupes.
func TestKillingTransferMidStreamLosesNothing(t *testing.T) {
	s := system(t)
	gw := s.Gateways()[0]
	a, b := uid(t, "a"), uid(t, "b")
	ca, cb := dial(t, s, gw, a), dial(t, s, gw, b)
	waitOnline(t, ca, []string{b})

	const n = 100
	killed := false
	killedPIDs := map[int]bool{}
	for i := 0; i < n; i++ {
		ca.chat(fmt.Sprintf("k%03d", i), frame.SingleChat, b, fmt.Sprintf("m%03d", i))
		if i == n/3 {
			reps := s.Provider.Replicas("transfer")
			if len(reps) == 0 {
				t.Fatal("no transfer replica to kill")
			}
			for _, r := range reps {
				killedPIDs[r.PID] = true
				if err := syscall.Kill(r.PID, syscall.SIGKILL); err != nil {
					t.Fatalf("killing transfer pid %d: %v", r.PID, err)
				}
			}
			killed = true
		}
	}
	if !killed {
		t.Fatal("transfer was never killed")
	}

	replies := ca.replies(wait, n)
	for i := 0; i < n; i++ {
		ackData(t, replies[fmt.Sprintf("k%03d", i)])
	}

	// B sees every message exactly once after deduping by msgId, in order.
	seen := map[string]bool{}
	var got []frame.Push
	for len(got) < n {
		p := pushData(t, cb.next(60*time.Second, isPush))
		if seen[p.Msg.MsgID] {
			continue
		}
		seen[p.Msg.MsgID] = true
		got = append(got, p)
	}
	for i, p := range got {
		if p.Seq != int64(i+1) || p.Msg.Content != fmt.Sprintf("m%03d", i) {
			t.Fatalf("message %d: seq %d content %q", i, p.Seq, p.Msg.Content)
		}
	}
	// The runtime replaced the killed process.
	for _, r := range s.Provider.Replicas("transfer") {
		if killedPIDs[r.PID] && r.Ready {
			t.Fatalf("transfer pid %d was killed but is still listed ready", r.PID)
		}
	}
	// Storage holds exactly n rows for the conversation.
	st := openSystemStore(t, context.Background())
	msgs, err := st.Messages(context.Background(), frame.SingleConversationID(a, b), 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != n {
		t.Fatalf("stored %d messages, want %d", len(msgs), n)
	}
}

// One socket writing as fast as it can: its waiting frames travel together,
// yet each is answered on its own (a refused one in the middle gets its own
// error), every message arrives once and in the order written, and the socket
// they were written on never gets them pushed back, only their acks.
func TestOneSocketBurstInOrderAndNeverPushedBack(t *testing.T) {
	s := system(t)
	gw := s.Gateways()[0]
	a, b := uid(t, "a"), uid(t, "b")
	writer, other, cb := dial(t, s, gw, a), dial(t, s, gw, a), dial(t, s, gw, b)
	waitOnline(t, writer, []string{a, b})

	const n = 2000
	const refused = "burst-1000"
	for i := range n {
		id := fmt.Sprintf("burst-%d", i)
		if id == refused {
			writer.chat(id, frame.GroupChat, gid(), "to a group that does not exist")
			continue
		}
		writer.chat(id, frame.SingleChat, b, fmt.Sprintf("burst %04d", i))
	}
	// Everything the writer gets until the end marker: n answers, no push.
	acks := 0
	for got := 0; got < n; got++ {
		f := writer.next(2*wait, nil)
		switch {
		case isPush(f):
			t.Fatalf("the writing socket was pushed a message: %s", f.Data)
		case f.ID == refused:
			if f.FrameType != frame.Error || !strings.Contains(f.ErrMsg, "no group") {
				t.Fatalf("refused frame answered %+v", f)
			}
		case f.FrameType == frame.Ack:
			acks++
		default:
			t.Fatalf("answer %+v", f)
		}
	}
	if acks != n-1 {
		t.Fatalf("%d acks, want %d", acks, n-1)
	}
	for name, c := range map[string]*client{"recipient": cb, "sender's other device": other} {
		seq := int64(0)
		for i := range n {
			if fmt.Sprintf("burst-%d", i) == refused {
				continue
			}
			p := pushData(t, c.next(2*wait, isPush))
			seq++
			if p.Seq != seq || p.Msg.Content != fmt.Sprintf("burst %04d", i) {
				t.Fatalf("%s, message %d: seq %d %q, want seq %d", name, i, p.Seq, p.Msg.Content, seq)
			}
		}
	}
	// The next push the writer gets is the recipient's answer: none of its
	// own messages came back before it.
	cb.chat("end", frame.SingleChat, a, "end")
	ackData(t, cb.next(wait, byID("end")))
	if p := pushData(t, writer.next(wait, isPush)); p.Msg.Content != "end" || p.SendID != b {
		t.Fatalf("writer's first push: %+v", p)
	}
}
