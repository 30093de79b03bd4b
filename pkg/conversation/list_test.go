package conversation

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"

	"easychat/pkg/domain"
	"easychat/pkg/frame"
)

// memStore answers from maps and counts what it is asked.
type memStore struct {
	lists     map[string][]domain.ListEntry
	sums      map[string]domain.Summary
	pos       map[domain.PositionKey]domain.Position
	sumReads  int
	posReads  int
	msgs      map[string][]domain.Message
	fail      error
	members   map[string][]string
	histories int
	hidden    map[string]map[int64]bool // user#conv → seqs
	hidReads  int
}

func (m *memStore) ListOf(_ context.Context, user string) ([]domain.ListEntry, error) {
	return m.lists[user], m.fail
}
func (m *memStore) Summaries(_ context.Context, convs []string) (map[string]domain.Summary, error) {
	m.sumReads += len(convs)
	out := map[string]domain.Summary{}
	for _, c := range convs {
		out[c] = m.sums[c]
	}
	return out, m.fail
}
func (m *memStore) Positions(_ context.Context, keys []domain.PositionKey) (map[domain.PositionKey]domain.Position, error) {
	m.posReads += len(keys)
	out := map[domain.PositionKey]domain.Position{}
	for _, k := range keys {
		out[k] = m.pos[k]
	}
	return out, m.fail
}
func (m *memStore) History(context.Context, string, int64, int64) ([]domain.Message, error) {
	m.histories++
	return nil, nil
}
func (m *memStore) Messages(_ context.Context, conv string, after, limit int64) ([]domain.Message, error) {
	var out []domain.Message
	for _, x := range m.msgs[conv] {
		if x.Seq > after && int64(len(out)) < limit {
			out = append(out, x)
		}
	}
	return out, nil
}
func (m *memStore) MessagesAt(_ context.Context, conv string, seqs []int64) ([]*domain.Message, error) {
	out := make([]*domain.Message, len(seqs))
	for i, q := range seqs {
		for _, x := range m.msgs[conv] {
			if x.Seq == q {
				x := x
				out[i] = &x
			}
		}
	}
	return out, nil
}
func (m *memStore) HiddenOf(_ context.Context, user, conv string) (map[int64]bool, error) {
	m.hidReads++
	return m.hidden[user+"#"+conv], nil
}
func (m *memStore) NewestHidden(_ context.Context, user string, convs []string) (map[string]int64, error) {
	m.hidReads += len(convs)
	out := map[string]int64{}
	for _, c := range convs {
		out[c] = 0
		for q := range m.hidden[user+"#"+c] {
			out[c] = max(out[c], q)
		}
	}
	return out, m.fail
}
func (m *memStore) Changes(context.Context, string, int64, int64) ([]domain.Change, error) {
	return nil, nil
}
func (m *memStore) ChangeVersion(context.Context, string) (int64, error) { return 0, nil }
func (m *memStore) IsMember(_ context.Context, g, u string) (bool, error) {
	for _, x := range m.members[g] {
		if x == u {
			return true, nil
		}
	}
	return false, nil
}

// memCache is a cache in memory: complete summaries and exact positions.
type memCache struct {
	sums map[string]domain.Summary
	pos  map[domain.PositionKey]domain.Position
	hid  map[string]int64 // user#conv → newest hidden seq
	down bool
}

func (c *memCache) NewestHidden(_ context.Context, user string, convs []string) (map[string]int64, error) {
	if c.down {
		return nil, errors.New("redis down")
	}
	out := map[string]int64{}
	for _, conv := range convs {
		if q, ok := c.hid[user+"#"+conv]; ok {
			out[conv] = q
		}
	}
	return out, nil
}
func (c *memCache) PutNewestHidden(_ context.Context, user string, newest map[string]int64) error {
	if c.down {
		return errors.New("redis down")
	}
	for conv, q := range newest {
		c.hid[user+"#"+conv] = max(c.hid[user+"#"+conv], q)
	}
	return nil
}

func (c *memCache) Summaries(_ context.Context, convs []string) (map[string]domain.Summary, error) {
	if c.down {
		return nil, errors.New("redis down")
	}
	out := map[string]domain.Summary{}
	for _, conv := range convs {
		if s, ok := c.sums[conv]; ok {
			out[conv] = s
		}
	}
	return out, nil
}
func (c *memCache) Fill(_ context.Context, sums map[string]domain.Summary) error {
	if c.down {
		return errors.New("redis down")
	}
	for k, v := range sums {
		c.sums[k] = v
	}
	return nil
}
func (c *memCache) Positions(_ context.Context, keys []domain.PositionKey) (map[domain.PositionKey]domain.Position, error) {
	if c.down {
		return nil, errors.New("redis down")
	}
	out := map[domain.PositionKey]domain.Position{}
	for _, k := range keys {
		if p, ok := c.pos[k]; ok {
			out[k] = p
		}
	}
	return out, nil
}
func (c *memCache) PutPositions(_ context.Context, pos map[domain.PositionKey]domain.Position) error {
	if c.down {
		return errors.New("redis down")
	}
	for k, v := range pos {
		c.pos[k] = v
	}
	return nil
}

func fixture() *memStore {
	last := func(seq int64, from string) *domain.Message {
		return &domain.Message{MsgID: fmt.Sprint(seq), Seq: seq, SendID: from, Msg: frame.Msg{Content: "hi"}}
	}
	pk := func(u, c string) domain.PositionKey { return domain.PositionKey{User: u, Conversation: c} }
	return &memStore{
		lists: map[string][]domain.ListEntry{"ann": {
			{ConversationID: "ann_ben", ChatType: frame.SingleChat},
			{ConversationID: "g-team", ChatType: frame.GroupChat, Name: "team", At: 5},
			{ConversationID: "ann_cat", ChatType: frame.SingleChat}, // listed, no message stored yet
			{ConversationID: "g-quiet", ChatType: frame.GroupChat, Name: "quiet", At: 7},
		}},
		sums: map[string]domain.Summary{
			"ann_ben": {Seq: 10, LastMsg: last(10, "ben"), UpdatedAt: 100, Sent: map[string]int64{"ann": 6, "ben": 10}},
			"g-team":  {Seq: 4, LastMsg: last(4, "ann"), UpdatedAt: 200, Sent: map[string]int64{"ann": 4}},
		},
		pos: map[domain.PositionKey]domain.Position{
			pk("ann", "ann_ben"): {Read: 8, Delivered: 9},
			pk("ben", "ann_ben"): {Read: 2, Delivered: 5},
		},
	}
}

func listOf(t *testing.T, s *Service, user string) []domain.ConversationState {
	t.Helper()
	res, err := s.Handle(context.Background(), user, "", []byte(`{"action":"list"}`))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(res)
	var out struct {
		Conversations []domain.ConversationState `json:"conversations"`
	}
	_ = json.Unmarshal(b, &out)
	return out.Conversations
}

func TestListAssemblesStateFromSummariesAndPositions(t *testing.T) {
	st := fixture()
	got := listOf(t, &Service{Store: st}, "ann")
	if len(got) != 3 {
		t.Fatalf("%d conversations: %+v", len(got), got)
	}
	// Most recent first; a group without messages sorts by when ann joined.
	team, ben, quiet := got[0], got[1], got[2]
	if team.ConversationID != "g-team" || ben.ConversationID != "ann_ben" || quiet.ConversationID != "g-quiet" {
		t.Fatalf("order: %+v", got)
	}
	// Ann read up to 8 herself; her own message at 6 counts as read too.
	if ben.PeerID != "ben" || ben.ReadSeq != 8 || ben.Unread != 2 || ben.LastMsg == nil || ben.LastMsg.Seq != 10 {
		t.Fatalf("ann_ben: %+v", ben)
	}
	// Ben wrote seq 10, so he has read everything before it.
	if ben.PeerReadSeq != 10 || ben.PeerDeliveredSeq != 10 {
		t.Fatalf("ann_ben peer: read %d delivered %d", ben.PeerReadSeq, ben.PeerDeliveredSeq)
	}
	// Ann wrote the group's newest message: nothing unread.
	if team.GroupName != "team" || team.Unread != 0 || team.ReadSeq != 4 {
		t.Fatalf("g-team: %+v", team)
	}
	if quiet.UpdatedAt != 7 || quiet.Seq != 0 || quiet.Unread != 0 {
		t.Fatalf("g-quiet: %+v", quiet)
	}
}

// A last message the user deleted for themselves is not their list's last
// message: the newest one they did not delete is, or none. Other members'
// lists are unchanged; a conversation whose last message the user did not
// hide costs no read of their hidden set.
func TestListSkipsWhatTheUserHid(t *testing.T) {
	st := fixture()
	st.lists["ben"] = []domain.ListEntry{{ConversationID: "ann_ben", ChatType: frame.SingleChat}}
	st.msgs = map[string][]domain.Message{"ann_ben": {{Seq: 7, MsgID: "7"}, {Seq: 8, MsgID: "8"}, {Seq: 9, MsgID: "9"}, {Seq: 10, MsgID: "10"}}}
	st.hidden = map[string]map[int64]bool{"ann#ann_ben": {10: true, 9: true, 4: true}, "ann#g-team": {2: true}}
	c := &memCache{sums: map[string]domain.Summary{}, pos: map[domain.PositionKey]domain.Position{}, hid: map[string]int64{}}
	last := func(s *Service, user, conv string) *domain.Message {
		t.Helper()
		for _, c := range listOf(t, s, user) {
			if c.ConversationID == conv {
				return c.LastMsg
			}
		}
		t.Fatalf("%s's list lacks %s", user, conv)
		return nil
	}
	for _, s := range []*Service{{Store: st}, {Store: st, Cache: c}, {Store: st, Cache: c}} { // bare, cold cache, warm
		if m := last(s, "ann", "ann_ben"); m == nil || m.Seq != 8 {
			t.Fatalf("ann hid 9 and 10: last message %+v", m)
		}
		if m := last(s, "ann", "g-team"); m == nil || m.Seq != 4 {
			t.Fatalf("ann hid an older message of g-team: last message %+v", m)
		}
		if m := last(s, "ben", "ann_ben"); m == nil || m.Seq != 10 {
			t.Fatalf("ben hid nothing: last message %+v", m)
		}
	}
	// Hiding everything leaves no last message (the cache heard of it as
	// transfer tells it).
	all := map[int64]bool{}
	for q := int64(1); q <= 10; q++ {
		all[q] = true
	}
	st.hidden["ann#ann_ben"] = all
	if err := c.PutNewestHidden(context.Background(), "ann", map[string]int64{"ann_ben": 10}); err != nil {
		t.Fatal(err)
	}
	for _, s := range []*Service{{Store: st}, {Store: st, Cache: c}} {
		if m := last(s, "ann", "ann_ben"); m != nil {
			t.Fatalf("ann hid everything: last message %+v", m)
		}
	}
}

// The cache answers what it holds; the store is asked only for the rest,
// which is cached; a cache that is down costs speed, not the answer.
func TestListReadsTheStoreOnlyForWhatTheCacheLacks(t *testing.T) {
	st := fixture()
	c := &memCache{sums: map[string]domain.Summary{}, pos: map[domain.PositionKey]domain.Position{}, hid: map[string]int64{}}
	s := &Service{Store: st, Cache: c}
	first := listOf(t, s, "ann")
	if st.sumReads != 4 || st.posReads != 6 {
		t.Fatalf("cold cache: %d summaries and %d positions read from the store", st.sumReads, st.posReads)
	}
	st.sumReads, st.posReads, st.hidReads = 0, 0, 0
	second := listOf(t, s, "ann")
	if st.sumReads != 0 || st.posReads != 0 || st.hidReads != 0 {
		t.Fatalf("warm cache: still read %d summaries, %d positions and %d hidden sets from the store", st.sumReads, st.posReads, st.hidReads)
	}
	if asJSON(first) != asJSON(second) {
		t.Fatalf("cached list differs:\n%+v\n%+v", first, second)
	}
	c.down = true
	if third := listOf(t, s, "ann"); asJSON(third) != asJSON(first) {
		t.Fatalf("list with the cache down differs:\n%+v\n%+v", first, third)
	}
}

// Sync pages through the conversations that have messages after the seqs
// the client knows, and does not read positions.
func TestSyncUsesSeqsOnly(t *testing.T) {
	st := fixture()
	st.msgs = map[string][]domain.Message{"ann_ben": {{Seq: 9, MsgID: "9"}, {Seq: 10, MsgID: "10"}}}
	res, err := (&Service{Store: st}).Handle(context.Background(), "ann", "sync", []byte(`{"seqs":{"ann_ben":8,"g-team":4}}`))
	if err != nil {
		t.Fatal(err)
	}
	r := res.(SyncResult)
	if len(r.Messages) != 2 || r.Messages[0].Seq != 9 || r.More || st.posReads != 0 {
		t.Fatalf("sync: %+v (positions read: %d)", r, st.posReads)
	}
}

func asJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
