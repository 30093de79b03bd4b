package e2e

import (
	"context"
	"testing"

	"easychat/pkg/domain"
	"easychat/pkg/listcache"
)

// The list cache only moves forward: a late or repeated write never undoes
// a newer one; a summary counts only once filled from the store; positions
// keep each field's maximum.
func TestListCacheMovesForwardOnly(t *testing.T) {
	ctx := context.Background()
	c := listcache.New(testRedis(t))
	conv := uid(t, "a") + "_" + uid(t, "z")
	msg := func(seq int64) *domain.Message { return &domain.Message{MsgID: "m", Seq: seq, SendID: "ann"} }

	// A writer alone knows only its batch: not a complete summary yet.
	if err := c.Advance(ctx, map[string]domain.Summary{conv: {Seq: 5, LastMsg: msg(5), UpdatedAt: 50, Sent: map[string]int64{"ann": 5}}}); err != nil {
		t.Fatal(err)
	}
	if got, err := c.Summaries(ctx, []string{conv}); err != nil || len(got) != 0 {
		t.Fatalf("an advanced but unfilled summary counted: %+v, %v", got, err)
	}
	// A reader fills it from the store, with older data than the writer's.
	if err := c.Fill(ctx, map[string]domain.Summary{conv: {Seq: 4, LastMsg: msg(4), UpdatedAt: 40, Sent: map[string]int64{"ann": 3, "ben": 4}}}); err != nil {
		t.Fatal(err)
	}
	got, err := c.Summaries(ctx, []string{conv})
	s := got[conv]
	if err != nil || s.Seq != 5 || s.LastMsg == nil || s.LastMsg.Seq != 5 || s.UpdatedAt != 50 || s.Sent["ann"] != 5 || s.Sent["ben"] != 4 {
		t.Fatalf("summary %+v, %v", s, err)
	}
	// A redelivered older batch changes nothing.
	if err := c.Advance(ctx, map[string]domain.Summary{conv: {Seq: 2, LastMsg: msg(2), UpdatedAt: 20, Sent: map[string]int64{"ben": 1}}}); err != nil {
		t.Fatal(err)
	}
	if got, _ := c.Summaries(ctx, []string{conv}); got[conv].Seq != 5 || got[conv].Sent["ben"] != 4 || got[conv].LastMsg.Seq != 5 {
		t.Fatalf("an older batch moved the summary back: %+v", got[conv])
	}

	k := domain.PositionKey{User: uid(t, "bob"), Conversation: conv}
	for _, p := range []domain.Position{{Read: 3, Delivered: 4}, {Read: 2, Delivered: 6}, {Read: 5, Delivered: 5}} {
		if err := c.PutPositions(ctx, map[domain.PositionKey]domain.Position{k: p}); err != nil {
			t.Fatal(err)
		}
	}
	pos, err := c.Positions(ctx, []domain.PositionKey{k, {User: k.User, Conversation: "other_conv"}})
	if err != nil || len(pos) != 1 || pos[k] != (domain.Position{Read: 5, Delivered: 6}) {
		t.Fatalf("positions %+v, %v", pos, err)
	}
}

// The newest hidden seq of a user's conversation is known once written,
// "none" included, and only grows: a list that read the store before a
// hide cannot put back the older value.
func TestListCacheNewestHiddenOnlyGrows(t *testing.T) {
	ctx := context.Background()
	c := listcache.New(testRedis(t))
	user := uid(t, "h")
	a, b, unknown := user+"_x", user+"_y", user+"_z"
	if err := c.PutNewestHidden(ctx, user, map[string]int64{a: 0, b: 7}); err != nil {
		t.Fatal(err)
	}
	if err := c.Hid(ctx, user, a, 12); err != nil { // transfer stored a hide
		t.Fatal(err)
	}
	if err := c.PutNewestHidden(ctx, user, map[string]int64{a: 3, b: 0}); err != nil { // stale reads
		t.Fatal(err)
	}
	got, err := c.NewestHidden(ctx, user, []string{a, b, unknown})
	if err != nil || len(got) != 2 || got[a] != 12 || got[b] != 7 {
		t.Fatalf("newest hidden seqs %v, %v; want %s: 12, %s: 7, nothing of %s", got, err, a, b, unknown)
	}
}
