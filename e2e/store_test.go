package e2e

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"easychat/pkg/domain"
	"easychat/pkg/event"
	"easychat/pkg/frame"
	"easychat/pkg/reject"
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
	if err := st.CreateGroup(ctx, domain.Group{ID: id, Name: "team", Owner: "alice", Members: []string{"bob", "bob", "carol"}}); err != nil {
		t.Fatal(err)
	}
	if err := st.CreateGroup(ctx, domain.Group{ID: id, Owner: "x"}); err != reject.ErrConflict {
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
	if _, err := st.Group(ctx, "no-such-group"); err != reject.ErrNotFound {
		t.Fatalf("missing group: %v", err)
	}
	if _, err := st.IsMember(ctx, "no-such-group", "bob"); err != reject.ErrNotFound {
		t.Fatalf("IsMember of a missing group: %v", err)
	}
	if err := st.AddMembers(ctx, "no-such-group", "bob"); err != reject.ErrNotFound {
		t.Fatalf("AddMembers to a missing group: %v", err)
	}
}

// Membership changes made at the same time are all kept, in the member
// documents and in the group's copy of them (on FerretDB, concurrent updates
// of one members array lost additions).
func TestStoreGroupMembershipUnderConcurrentChanges(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	st := openStore(t, ctx)
	id := fmt.Sprintf("g-race-%d", time.Now().UnixNano())
	var start []string
	for i := range 10 {
		start = append(start, fmt.Sprintf("old%d", i))
	}
	if err := st.CreateGroup(ctx, domain.Group{ID: id, Name: "race", Owner: "owner", Members: start}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 40)
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := st.AddMembers(ctx, id, fmt.Sprintf("new%d", i)); err != nil {
				errs <- err
			}
		}()
	}
	for i := range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := st.RemoveMembers(ctx, id, fmt.Sprintf("old%d", i)); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	g, err := st.Group(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"owner"}
	for i := range 20 {
		want = append(want, fmt.Sprintf("new%d", i))
	}
	got := slices.Clone(g.Members)
	sort.Strings(got)
	sort.Strings(want)
	if !slices.Equal(got, want) {
		t.Fatalf("members after concurrent changes:\n got %v\nwant %v", got, want)
	}
	gs, err := st.GroupsOf(ctx, "new7")
	if err != nil || len(gs) != 1 || gs[0].ID != id || len(gs[0].Members) != 21 {
		t.Fatalf("GroupsOf(new7) = %+v, %v", gs, err)
	}
	for _, u := range []string{"new3", "owner", "old4"} {
		if ok, err := st.IsMember(ctx, id, u); err != nil || ok != (u != "old4") {
			t.Fatalf("IsMember(%s) = %v, %v", u, ok, err)
		}
	}
}

// Groups and single chats stored by earlier versions, which kept no lists,
// are put on their members' lists the first time the store starts.
func TestStoreMigratesListsOfEarlierVersions(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	st := openStore(t, ctx)
	id := fmt.Sprintf("g-old-%d", time.Now().UnixNano())
	conv := fmt.Sprintf("old%d_zed", time.Now().UnixNano())
	if _, err := st.DB().Collection(store.Groups).InsertOne(ctx, map[string]any{
		"_id": id, "name": "old", "owner": "alice", "members": []string{"alice", "bob"}, "createdAt": int64(1)}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.DB().Collection(store.Conversation).InsertOne(ctx, map[string]any{
		"_id": conv, "chatType": frame.SingleChat, "members": []string{"old-x", "zed"}, "seq": int64(1)}); err != nil {
		t.Fatal(err)
	}
	// As on a store that has not run this version yet.
	if _, err := st.DB().Collection(store.Meta).DeleteMany(ctx, map[string]any{}); err != nil {
		t.Fatal(err)
	}
	if err := st.EnsureIndexes(ctx); err != nil {
		t.Fatal(err)
	}
	gs, err := st.GroupsOf(ctx, "bob")
	if err != nil || !slices.ContainsFunc(gs, func(g domain.Group) bool { return g.ID == id }) {
		t.Fatalf("bob's groups after the migration: %+v, %v", gs, err)
	}
	list, err := st.ListOf(ctx, "zed")
	if err != nil || !slices.ContainsFunc(list, func(e domain.ListEntry) bool { return e.ConversationID == conv }) {
		t.Fatalf("zed's list after the migration: %+v, %v", list, err)
	}
	// Changes after the migration keep the members it found.
	if err := st.AddMembers(ctx, id, "carol"); err != nil {
		t.Fatal(err)
	}
	if g, err := st.Group(ctx, id); err != nil || fmt.Sprint(g.Members) != "[alice bob carol]" {
		t.Fatalf("after an add: %+v, %v", g, err)
	}
	if gs, err := st.GroupsOf(ctx, "carol"); err != nil || len(gs) != 1 || gs[0].ID != id {
		t.Fatalf("carol's groups: %+v, %v", gs, err)
	}
}

// Read and delivered positions only move forward, each on its own; a
// document from before deliveredSeq existed (no such field) still advances.
// Writes are sequential, as the pipeline makes them: one reader's receipts in
// a conversation share a Kafka partition and are applied one call at a time.
// (FerretDB applies a conditional update as read, then write, so racing
// writers on one document could move it back; MongoDB would not.)
func TestStorePositionsOnlyMoveForward(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	st := openStore(t, ctx)
	conv := fmt.Sprintf("a_b_%d", time.Now().UnixNano())

	// A legacy document: readSeq only.
	if _, err := st.DB().Collection(store.UserConversation).InsertOne(ctx, map[string]any{
		"_id": "b#" + conv, "userId": "b", "conversationId": conv, "readSeq": int64(2), "updatedAt": int64(1)}); err != nil {
		t.Fatal(err)
	}
	if got, err := st.MarkDelivered(ctx, "b", conv, 4); err != nil || got != 4 {
		t.Fatalf("MarkDelivered on a legacy document: %d, %v", got, err)
	}
	// Interleaved, out of order: each field keeps its own maximum.
	for _, step := range []struct {
		read      bool
		seq, want int64
	}{{true, 5, 5}, {false, 3, 4}, {true, 4, 5}, {false, 9, 9}, {true, 7, 7}, {false, 8, 9}, {true, 7, 7}} {
		mark := st.MarkDelivered
		if step.read {
			mark = st.MarkRead
		}
		if got, err := mark(ctx, "b", conv, step.seq); err != nil || got != step.want {
			t.Fatalf("read=%v seq %d: got %d (%v), want %d", step.read, step.seq, got, err, step.want)
		}
	}
	if p, err := st.Position(ctx, "b", conv); err != nil || p.Read != 7 || p.Delivered != 9 {
		t.Fatalf("position %+v (%v), want read 7, delivered 9", p, err)
	}
	// A new user's first position, delivered before read.
	if got, err := st.MarkDelivered(ctx, "c", conv, 3); err != nil || got != 3 {
		t.Fatalf("first MarkDelivered: %d, %v", got, err)
	}
	if p, _ := st.Position(ctx, "c", conv); p.Read != 0 || p.Delivered != 3 {
		t.Fatalf("position of c %+v", p)
	}
}

// Complete pages of a conversation are sealed into one document each; a
// page that is not there (its writer stopped before sealing it) is read
// from its claims, so history and sync return the same either way.
func TestStorePagesAndTheirFallback(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	st := openStore(t, ctx)
	conv := fmt.Sprintf("pa%d_pb", time.Now().UnixNano())
	const n = 3*store.PageSize + 5
	evs := make([]event.Chat, n)
	for i := range evs {
		evs[i] = event.Chat{MsgID: fmt.Sprintf("%s-%03d", conv, i), ConversationID: conv, ChatType: frame.SingleChat,
			SendID: "pa", RecvID: "pb", SendTime: int64(i), Msg: frame.Msg{Content: fmt.Sprint(i + 1)}}
	}
	for i := 0; i < n; i += 7 { // batches that straddle page boundaries
		if _, err := st.SaveChats(ctx, evs[i:min(n, i+7)]); err != nil {
			t.Fatal(err)
		}
	}
	claims := st.DB().Client().Database(st.DB().Name() + store.ClaimsDBSuffix)
	pages, err := claims.Collection(store.SeqPage).CountDocuments(ctx, map[string]any{})
	if err != nil || pages < 3 {
		t.Fatalf("%d pages sealed (%v), want 3", pages, err)
	}
	check := func(what string) {
		t.Helper()
		all, err := st.Messages(ctx, conv, 0, 1000)
		if err != nil || len(all) != n {
			t.Fatalf("%s: sync returned %d of %d (%v)", what, len(all), n, err)
		}
		for i, m := range all {
			if m.Seq != int64(i+1) || m.Msg.Content != fmt.Sprint(i+1) {
				t.Fatalf("%s: message %d is %+v", what, i, m)
			}
		}
		page, err := st.History(ctx, conv, store.PageSize+3, 10) // across a page boundary
		if err != nil || len(page) != 10 || page[0].Seq != store.PageSize+2 || page[9].Seq != store.PageSize-7 {
			t.Fatalf("%s: history page %+v (%v)", what, page, err)
		}
	}
	check("sealed")
	if _, err := claims.Collection(store.SeqPage).DeleteOne(ctx, map[string]any{"_id": conv + "#p1"}); err != nil {
		t.Fatal(err)
	}
	check("page 1 missing")
}

// A change reaches every read of its message, whichever transfer replica
// seals the message's page and when: here replica A stored seqs 1–10 (and
// keeps them in memory to seal their page), replica B recalls seq 5 and
// edits seq 12 before and after A seals, and a third store reads.
func TestStoreChangesSurviveSealingFromOlderCopies(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	a, b, reader := openStore(t, ctx), openStore(t, ctx), openStore(t, ctx)
	tag := strings.ToLower(uid(t, "rev"))
	me, peer := tag+"-me", tag+"-peer"
	conv := frame.SingleConversationID(me, peer)
	batch := func(from, n int) []event.Chat {
		evs := make([]event.Chat, n)
		for i := range evs {
			evs[i] = event.Chat{MsgID: fmt.Sprintf("%s-m%02d", tag, from+i+1), ConversationID: conv, ChatType: frame.SingleChat,
				SendID: me, RecvID: peer, SendTime: int64(from + i), Msg: frame.Msg{Content: fmt.Sprintf("secret %d", from+i+1)}}
		}
		return evs
	}
	if _, err := a.SaveChats(ctx, batch(0, 10)); err != nil {
		t.Fatal(err)
	}
	change := func(st *store.Store, seq int64, e domain.Edit, v int64) {
		got, err := st.MessagesAt(ctx, conv, []int64{seq})
		if err != nil || got[0] == nil {
			t.Fatalf("reading seq %d: %v", seq, err)
		}
		next, ok := got[0].Apply(e, v)
		if !ok {
			t.Fatalf("change %d did not apply", v)
		}
		if err := st.Revise(ctx, next); err != nil {
			t.Fatal(err)
		}
	}
	change(b, 5, domain.Edit{Kind: frame.KindRecall, By: me}, 1)
	if _, err := a.SaveChats(ctx, batch(10, 10)); err != nil { // A seals page 0 holding its copy of seq 5
		t.Fatal(err)
	}
	change(b, 12, domain.Edit{Kind: frame.KindEdit, By: me, Content: "edited 12", Time: 1}, 2)
	if _, err := a.SaveChats(ctx, batch(20, 12)); err != nil { // page 1, with its copy of seq 12
		t.Fatal(err)
	}
	change(b, 3, domain.Edit{Kind: frame.KindEdit, By: me, Content: "edited 3", Time: 1}, 3) // page 0 is sealed by now
	ms, err := reader.History(ctx, conv, 0, 32)
	if err != nil || len(ms) != 32 {
		t.Fatalf("history: %d (%v)", len(ms), err)
	}
	for _, m := range ms {
		want := fmt.Sprintf("secret %d", m.Seq)
		switch m.Seq {
		case 5:
			want = ""
			if !m.Msg.Recalled {
				t.Fatalf("seq 5 not recalled: %+v", m.Msg)
			}
		case 12:
			want = "edited 12"
		case 3:
			want = "edited 3"
		}
		if m.Msg.Content != want {
			t.Fatalf("seq %d reads %q, want %q", m.Seq, m.Msg.Content, want)
		}
	}
}

// A file is either sent or swept, never both: a message's use of an upload
// and the orphan sweeper race on the same keys, and each key goes to one.
func TestStoreUploadGoesToTheMessageOrTheSweeperNotBoth(t *testing.T) {
	ctx := context.Background()
	st := openSystemStore(t, ctx)
	const n = 20
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("%s/%s/%032x", frame.SingleConversationID("alice", "bob"), "alice", time.Now().UnixNano()+int64(i))
		if err := st.AddUpload(ctx, domain.Upload{Key: keys[i], Conversation: "alice_bob", User: "alice", At: 1}); err != nil {
			t.Fatal(err)
		}
	}
	used := make([]error, n)
	var claimed []domain.Upload
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		for i, k := range keys {
			used[i] = st.UseUpload(ctx, k, fmt.Sprintf("msg-%d", i))
		}
	}()
	go func() {
		defer wg.Done()
		for range 5 {
			c, err := st.ClaimOrphans(ctx, 2, 1000)
			if err != nil {
				t.Error(err)
				return
			}
			claimed = append(claimed, c...)
		}
	}()
	wg.Wait()
	swept := map[string]bool{}
	for _, u := range claimed {
		swept[u.Key] = true
	}
	for i, k := range keys {
		switch {
		case used[i] == nil && swept[k]:
			t.Errorf("%s both sent and swept", k)
		case used[i] != nil && !swept[k]:
			t.Errorf("%s neither sent nor swept: %v", k, used[i])
		case used[i] != nil && !errors.Is(used[i], reject.ErrNotFound):
			t.Errorf("%s: %v", k, used[i])
		}
	}
	// Whatever was sent may be sent again by the same message, by no other.
	for i, k := range keys {
		if used[i] != nil {
			continue
		}
		if err := st.UseUpload(ctx, k, fmt.Sprintf("msg-%d", i)); err != nil {
			t.Errorf("resend: %v", err)
		}
		if err := st.UseUpload(ctx, k, "another"); !errors.Is(err, reject.ErrConflict) {
			t.Errorf("another message: %v", err)
		}
	}
}

// A recalled file the file store could not delete goes to the sweeper: the
// next sweep claims it, and its message cannot use it again.
func TestStoreQueuedDeletionIsSwept(t *testing.T) {
	ctx := context.Background()
	st := openSystemStore(t, ctx)
	key := fmt.Sprintf("%s/%s/%032x", frame.SingleConversationID("alice", "bob"), "alice", time.Now().UnixNano())
	if err := st.AddUpload(ctx, domain.Upload{Key: key, Conversation: "alice_bob", User: "alice", At: time.Now().UnixMilli()}); err != nil {
		t.Fatal(err)
	}
	if err := st.UseUpload(ctx, key, "msg-1"); err != nil {
		t.Fatal(err)
	}
	for range 2 { // a retried recall queues it again
		if err := st.QueueDeletion(ctx, key); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.UseUpload(ctx, key, "msg-1"); !errors.Is(err, reject.ErrNotFound) {
		t.Fatalf("its message used it again: %v", err)
	}
	// Any cutoff takes it, however recent the sweep's.
	claimed, err := st.ClaimOrphans(ctx, 1, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(claimed, func(u domain.Upload) bool { return u.Key == key }) {
		t.Fatalf("the sweep did not claim the queued file (claimed %d)", len(claimed))
	}
	if err := st.DropUpload(ctx, key); err != nil {
		t.Fatal(err)
	}
}

// Hide answers the newest seq the user has hidden in the conversation, and
// NewestHidden reads it back by _id (0 where nothing is hidden).
func TestStoreNewestHidden(t *testing.T) {
	ctx := context.Background()
	st := openSystemStore(t, ctx)
	user := uid(t, "h")
	conv, other := frame.SingleConversationID(user, "x"), frame.SingleConversationID(user, "y")
	for _, c := range []struct{ seq, want int64 }{{5, 5}, {3, 5}, {5, 5}, {9, 9}} {
		if got, err := st.Hide(ctx, user, conv, c.seq); err != nil || got != c.want {
			t.Fatalf("hide %d: newest %d, %v; want %d", c.seq, got, err, c.want)
		}
	}
	got, err := st.NewestHidden(ctx, user, []string{conv, other})
	if err != nil || len(got) != 2 || got[conv] != 9 || got[other] != 0 {
		t.Fatalf("newest hidden %v, %v", got, err)
	}
}
