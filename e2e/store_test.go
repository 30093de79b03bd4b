package e2e

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"easychat/pkg/event"
	"easychat/pkg/frame"
	"easychat/pkg/store"
)

// The store must give every message of a conversation exactly one seq, with
// no gaps, even when records are redelivered and several writers race.
func TestStoreSeqExactlyOnceUnderRedeliveryAndRace(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	st := openStore(t, ctx)

	conv := fmt.Sprintf("a_b_%d", time.Now().UnixNano())
	const n = 60
	evs := make([]event.Chat, n)
	for i := range evs {
		evs[i] = event.Chat{MsgID: fmt.Sprintf("%s-m%03d", conv, i), ConversationID: conv, ChatType: frame.SingleChat,
			SendID: "a", RecvID: "b", SendTime: int64(i), Msg: frame.Msg{Content: fmt.Sprint(i)}}
	}
	// Three writers each deliver every record (a redelivery storm).
	var wg sync.WaitGroup
	errs := make(chan error, 3*n)
	for w := 0; w < 3; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, ev := range evs {
				if _, _, err := st.SaveChat(ctx, ev); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}

	msgs, err := st.Messages(ctx, conv, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != n {
		t.Fatalf("stored %d messages, want %d", len(msgs), n)
	}
	seqs := make([]int, len(msgs))
	ids := map[string]bool{}
	for i, m := range msgs {
		seqs[i] = int(m.Seq)
		if ids[m.MsgID] {
			t.Fatalf("msgId %s stored twice", m.MsgID)
		}
		ids[m.MsgID] = true
	}
	sort.Ints(seqs)
	for i, s := range seqs {
		if s != i+1 {
			t.Fatalf("seqs not 1..%d without gaps: %v", n, seqs)
		}
	}

	// A further redelivery returns the stored row, not a new one.
	m, fresh, err := st.SaveChat(ctx, evs[10])
	if err != nil || fresh {
		t.Fatalf("redelivery: fresh=%v err=%v", fresh, err)
	}
	if m.MsgID != evs[10].MsgID || m.Seq < 1 || m.Seq > n {
		t.Fatalf("redelivery returned %+v", m)
	}
}

func TestStoreGroups(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	st := openStore(t, ctx)
	id := fmt.Sprintf("g%d", time.Now().UnixNano())
	if err := st.CreateGroup(ctx, store.Group{ID: id, Name: "team", Owner: "alice", Members: []string{"bob", "bob", "carol"}}); err != nil {
		t.Fatal(err)
	}
	if err := st.CreateGroup(ctx, store.Group{ID: id, Owner: "x"}); err != store.ErrExists {
		t.Fatalf("second create: %v, want ErrExists", err)
	}
	if err := st.AddMembers(ctx, id, "dave", "alice"); err != nil {
		t.Fatal(err)
	}
	if err := st.RemoveMembers(ctx, id, "carol"); err != nil {
		t.Fatal(err)
	}
	g, err := st.Group(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(g.Members)
	if fmt.Sprint(g.Members) != "[alice bob dave]" {
		t.Fatalf("members %v", g.Members)
	}
	for user, want := range map[string]bool{"bob": true, "carol": false, "mallory": false} {
		if ok, err := st.IsMember(ctx, id, user); err != nil || ok != want {
			t.Fatalf("IsMember(%s) = %v, %v", user, ok, err)
		}
	}
	if _, err := st.Group(ctx, "no-such-group"); err != store.ErrNotFound {
		t.Fatalf("missing group: %v", err)
	}
}
