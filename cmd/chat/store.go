package main

import (
	"sort"
	"strings"
	"sync"

	"easychat/pkg/frame"
)

// Message is one chat message as this client holds it.
type Message struct {
	MsgID    string
	ConvID   string
	ChatType int
	SendID   string
	MType    int // frame.TextMsg, ImageMsg or FileMsg (Content is then a frame.File)
	Content  string
	Seq      int64 // 0 until known (a message of mine before the server stored it)
	SendTime int64 // ms
	order    int64 // arrival order here, the last tie-break

	Quote      *frame.Quote // a reply: what it answers
	Mentions   []string
	MentionAll bool
	Edited     int64 // ms of the last edit, 0 if never
	Recalled   bool
	RecalledBy string
	Reactions  map[string][]string // emoji → users; replaced, never changed in place
	Version    int64               // the change number its state is from
	Hidden     bool                // deleted for me: kept for seqs, never shown
}

// setState takes the server's state of the message (content and what
// changes it). Hidden is mine only and stays.
func (m *Message) setState(w frame.Msg) {
	m.MType = w.MType
	m.Content = w.Content
	m.Quote = w.Quote
	m.Mentions = w.Mentions
	m.MentionAll = w.MentionAll
	m.Edited = w.Edited
	m.Recalled = w.Recalled
	m.RecalledBy = w.RecalledBy
	m.Reactions = w.Reactions
	m.Version = w.Version
	m.Hidden = m.Hidden || w.Hidden
	if m.Recalled || m.Hidden {
		m.Content = ""
	}
}

// MentionsUser reports whether the message mentions user (or everyone), not
// counting the sender's own.
func (m Message) MentionsUser(user string) bool {
	if m.SendID == user || m.Recalled {
		return false
	}
	if m.MentionAll {
		return true
	}
	for _, u := range m.Mentions {
		if u == user {
			return true
		}
	}
	return false
}

// Conv is one conversation as this client knows it.
type Conv struct {
	ID        string
	ChatType  int
	PeerID    string // single chat
	GroupName string // group chat
	Seq       int64  // newest seq the server told about
	BaseSeq   int64  // messages up to here are left to history (not fetched by sync)
	ReadSeq   int64  // how far I have read
	Unread    int64
	Complete  bool  // all of it is held from seq 1 (history came back short)
	Version   int64 // the highest change number seen (sync asks for what follows)
	// Members and Owner of a group, when MembersKnown (for @mentions).
	Members      []string
	Owner        string
	MembersKnown bool
	msgs         map[string]*Message
}

// Store holds conversations and their messages. Pushes, sync answers and
// history pages all merge into it by msgId, so a message is shown once
// whatever brought it. It is safe for concurrent use.
type Store struct {
	me    string
	mu    sync.Mutex
	convs map[string]*Conv
	added int64
}

// NewStore returns an empty store for user me.
func NewStore(me string) *Store { return &Store{me: me, convs: map[string]*Conv{}} }

// ConvInfo is an entry of the conversation list (the API's shape).
type ConvInfo struct {
	ConversationID string   `json:"conversationId"`
	ChatType       int      `json:"chatType"`
	PeerID         string   `json:"peerId"`
	GroupName      string   `json:"groupName"`
	Seq            int64    `json:"seq"`
	ReadSeq        int64    `json:"readSeq"`
	Unread         int64    `json:"unread"`
	Mentioned      bool     `json:"mentioned"` // a message after ReadSeq mentions me
	LastMsg        *LastMsg `json:"lastMsg"`
	UpdatedAt      int64    `json:"updatedAt"`
}

// LastMsg is the newest message of a list entry.
type LastMsg struct {
	SendID   string    `json:"sendId"`
	SendTime int64     `json:"sendTime"`
	Seq      int64     `json:"seq"`
	Msg      frame.Msg `json:"msg"`
}

func (s *Store) conv(id string, chatType int) *Conv {
	c := s.convs[id]
	if c == nil {
		if chatType == 0 {
			chatType = frame.GroupChat
			if strings.Contains(id, "_") {
				chatType = frame.SingleChat
			}
		}
		c = &Conv{ID: id, ChatType: chatType, msgs: map[string]*Message{}}
		if chatType == frame.SingleChat {
			a, b, _ := strings.Cut(id, "_")
			c.PeerID = a
			if a == s.me {
				c.PeerID = b
			}
		}
		s.convs[id] = c
	}
	return c
}

// Source says what brought a message.
type Source int

const (
	FromPush Source = iota
	FromSync
	FromHistory
)

// Merge adds the message of a push/sync/history item. It reports whether
// the message is new to this client; for a known one it fills in the seq
// if that was missing, and takes the state if it is of a later change.
// A message new and hidden is held (for its seq) but never shown.
func (s *Store) Merge(p frame.Push, src Source) (Message, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.conv(p.ConversationID, p.ChatType)
	if m := c.msgs[p.Msg.MsgID]; m != nil {
		if m.Seq == 0 && p.Seq > 0 {
			m.Seq = p.Seq
		}
		switch q := p.Msg.Quote; {
		case p.Msg.Version > m.Version:
			m.setState(p.Msg)
		case p.Msg.Hidden:
			m.Hidden, m.Content = true, ""
		case q != nil && q.Recalled && m.Quote != nil && !m.Quote.Recalled:
			m.Quote = q // the quoted message was recalled since (not a change of this one)
		}
		c.Seq = max(c.Seq, p.Seq)
		return *m, false
	}
	fresh := len(c.msgs) == 0 && src == FromPush && c.BaseSeq == 0 && !c.Complete
	m := &Message{MsgID: p.Msg.MsgID, ConvID: p.ConversationID, ChatType: p.ChatType, SendID: p.SendID,
		Seq: p.Seq, SendTime: p.SendTime}
	m.setState(p.Msg)
	s.added++
	m.order = s.added
	c.msgs[m.MsgID] = m
	if fresh && p.Seq > 1 {
		c.BaseSeq = p.Seq - 1 // a conversation first seen now: older ones are history
	}
	if src != FromHistory && !m.Hidden && p.Seq > c.Seq && m.SendID != s.me && p.Seq > c.ReadSeq {
		c.Unread++
	}
	c.Seq = max(c.Seq, p.Seq)
	return *m, true
}

// AddOwn records a message of mine once acked (its seq comes later, with a
// sync or history). It reports false if the message was known already.
func (s *Store) AddOwn(convID string, chatType int, msgID string, msg frame.Msg, at int64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.conv(convID, chatType)
	if c.msgs[msgID] != nil {
		return false
	}
	s.added++
	m := &Message{MsgID: msgID, ConvID: convID, ChatType: chatType, SendID: s.me, SendTime: at, order: s.added}
	m.setState(msg)
	c.msgs[msgID] = m
	return true
}

// ApplyList takes the server's conversation list: names, seqs, read
// positions and unread counts.
func (s *Store) ApplyList(list []ConvInfo) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, it := range list {
		c := s.conv(it.ConversationID, it.ChatType)
		if it.PeerID != "" {
			c.PeerID = it.PeerID
		}
		if it.GroupName != "" {
			c.GroupName = it.GroupName
		}
		c.Seq = max(c.Seq, it.Seq)
		if !c.hasSeqs() && !c.Complete {
			c.BaseSeq = max(c.BaseSeq, it.Seq) // left to history
		}
		c.ReadSeq = max(c.ReadSeq, it.ReadSeq)
		c.Unread = it.Unread
		if c.ReadSeq >= c.Seq {
			c.Unread = 0
		}
	}
}

func (c *Conv) hasSeqs() bool {
	for _, m := range c.msgs {
		if m.Seq > 0 {
			return true
		}
	}
	return false
}

// KnownSeq is the seq up to which this client holds every message it wants;
// a gap (a push missed while reconnecting) stops it. conversation.sync
// returns what lies beyond.
func (c *Conv) KnownSeq() int64 {
	var seqs []int64
	for _, m := range c.msgs {
		if m.Seq > 0 {
			seqs = append(seqs, m.Seq)
		}
	}
	if len(seqs) == 0 {
		return c.BaseSeq
	}
	sort.Slice(seqs, func(i, j int) bool { return seqs[i] < seqs[j] })
	top := c.BaseSeq
	for _, s := range seqs {
		if s <= top {
			continue // history, or a repeat
		}
		if s != top+1 {
			break // a gap
		}
		top = s
	}
	return top
}

// KnownSeqs is the seqs argument of conversation.sync.
func (s *Store) KnownSeqs() map[string]int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]int64, len(s.convs))
	for id, c := range s.convs {
		out[id] = c.KnownSeq()
	}
	return out
}

// Messages returns conv's messages in order: by seq, messages without one
// (mine, not stored yet) last, by time. Hidden ones are left out.
func (s *Store) Messages(convID string) []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.convs[convID]
	if c == nil {
		return nil
	}
	out := make([]Message, 0, len(c.msgs))
	for _, m := range c.msgs {
		if !m.Hidden {
			out = append(out, *m)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		switch {
		case a.Seq > 0 && b.Seq > 0:
			return a.Seq < b.Seq
		case a.Seq > 0:
			return true
		case b.Seq > 0:
			return false
		}
		if a.SendTime != b.SendTime {
			return a.SendTime < b.SendTime
		}
		return a.order < b.order
	})
	return out
}

// Conv returns a copy of a conversation's fields (ok false if unknown).
func (s *Store) Conv(id string) (Conv, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.convs[id]
	if c == nil {
		return Conv{}, false
	}
	cp := *c
	cp.msgs = nil
	return cp, true
}

// Ensure makes a conversation known (e.g. a single chat before its first
// message) and returns it.
func (s *Store) Ensure(id string, chatType int) Conv {
	s.mu.Lock()
	defer s.mu.Unlock()
	cp := *s.conv(id, chatType)
	cp.msgs = nil
	return cp
}

// SetComplete records that all of conv is held: a history page from the
// newest came back short.
func (s *Store) SetComplete(convID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.conv(convID, 0)
	c.Complete = true
	c.BaseSeq = 0
}

// SetGroupName records a group's name.
func (s *Store) SetGroupName(id, name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.conv(id, frame.GroupChat).GroupName = name
}

// Oldest is the lowest seq held for conv (0: none), the "before" of the next
// history page.
func (s *Store) Oldest(convID string) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	var low int64
	if c := s.convs[convID]; c != nil {
		for _, m := range c.msgs {
			if m.Seq > 0 && (low == 0 || m.Seq < low) {
				low = m.Seq
			}
		}
	}
	return low
}

// maxMarkIDs is the most msgIds the server takes in one markChat.
const maxMarkIDs = 100

// ToMark returns what a markChat for conv should carry: the newest seq held
// and the ids of others' messages after my read position. ok is false when
// there is nothing new to mark. It records the new read position.
func (s *Store) ToMark(convID string) (readSeq int64, ids []string, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.convs[convID]
	if c == nil {
		return 0, nil, false
	}
	for _, m := range c.msgs {
		readSeq = max(readSeq, m.Seq)
	}
	if readSeq <= c.ReadSeq {
		c.Unread = 0
		return 0, nil, false
	}
	for _, m := range c.msgs {
		if m.Seq > c.ReadSeq && m.SendID != s.me {
			ids = append(ids, m.MsgID)
		}
	}
	sort.Strings(ids)
	if len(ids) > maxMarkIDs {
		// readSeq covers them all; the ids only name messages for receipts.
		ids = ids[len(ids)-maxMarkIDs:]
	}
	c.ReadSeq = readSeq
	c.Unread = 0
	return readSeq, ids, true
}

// Title names a conversation for display: @peer or #group.
func (c Conv) Title() string {
	if c.ChatType == frame.SingleChat {
		return "@" + c.PeerID
	}
	if c.GroupName != "" {
		return "#" + c.GroupName
	}
	return "#" + c.ID
}

// RecvID is the recvId of a chat or markChat frame for the conversation.
func (c Conv) RecvID() string {
	if c.ChatType == frame.SingleChat {
		return c.PeerID
	}
	return c.ID
}

// FindGroup returns the id of a known group conversation with that id or
// name.
func (s *Store) FindGroup(idOrName string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c := s.convs[idOrName]; c != nil && c.ChatType == frame.GroupChat {
		return c.ID, true
	}
	for _, c := range s.convs {
		if c.ChatType == frame.GroupChat && strings.EqualFold(c.GroupName, idOrName) {
			return c.ID, true
		}
	}
	return "", false
}

// FindSeq returns the message of conv at seq, unless hidden.
func (s *Store) FindSeq(convID string, seq int64) (Message, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c := s.convs[convID]; c != nil {
		for _, m := range c.msgs {
			if m.Seq == seq && !m.Hidden {
				return *m, true
			}
		}
	}
	return Message{}, false
}

// Find returns the message msgID of conv.
func (s *Store) Find(convID, msgID string) (Message, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c := s.convs[convID]; c != nil {
		if m := c.msgs[msgID]; m != nil {
			return *m, true
		}
	}
	return Message{}, false
}

// ChangeResult is what applying a change did.
type ChangeResult struct {
	Conv    Conv    // the conversation (known false: not held here)
	Known   bool    // the conversation is held
	Held    bool    // the message is held
	Applied bool    // it changed the message (false: stale, a repeat, or not held)
	Before  Message // the message before (held only)
	After   Message // after: the held one, or the change's message
}

// ApplyChange applies a conversation.changed (live or from sync): the
// message's state is replaced if the change's is of a later version, a
// hide removes it from view. The conversation's version only goes up.
// Changes of messages not held only move the version.
func (s *Store) ApplyChange(ch frame.Changed) ChangeResult {
	s.mu.Lock()
	defer s.mu.Unlock()
	var r ChangeResult
	var state *frame.Msg
	if ch.Message != nil {
		w := ch.Message.Msg
		if w.Version == 0 {
			w.Version = ch.Version
		}
		state = &w
		r.After = Message{MsgID: ch.MsgID, ConvID: ch.ConversationID, ChatType: ch.ChatType,
			SendID: ch.Message.SendID, Seq: ch.Message.Seq, SendTime: ch.Message.SendTime}
		r.After.setState(w)
	}
	if r.After.Seq == 0 {
		r.After.Seq = ch.Seq
	}
	c := s.convs[ch.ConversationID]
	if c == nil {
		return r // not one of mine as far as I know: nothing to hold
	}
	r.Known = true
	c.Version = max(c.Version, ch.Version)
	m := c.msgs[ch.MsgID]
	if m == nil {
		r.Conv = c.copy()
		return r
	}
	r.Held, r.Before = true, *m
	switch {
	case ch.Kind == frame.KindHide:
		if !m.Hidden {
			m.Hidden, m.Content = true, ""
			r.Applied = true
		}
	case state != nil && state.Version > m.Version:
		m.setState(*state)
		if m.Seq == 0 {
			m.Seq = max(ch.Message.Seq, ch.Seq)
		}
		r.Applied = true
		c.requote(m)
	}
	r.After = *m
	r.Conv = c.copy()
	return r
}

// requote brings the previews of replies to m up to date.
func (c *Conv) requote(m *Message) {
	for _, x := range c.msgs {
		q := x.Quote
		if q == nil || q.MsgID != m.MsgID {
			continue
		}
		nq := *q // replaced, not changed: copies handed out share it
		if m.Recalled {
			nq = frame.Quote{MsgID: q.MsgID, Seq: q.Seq, SendID: q.SendID, Recalled: true}
		} else {
			// A file message's preview is its name, never its JSON.
			p := []rune(previewText(*m))
			nq.Content, nq.MType = string(p[:min(frame.QuoteRunes, len(p))]), m.MType
		}
		x.Quote = &nq
	}
}

func (c *Conv) copy() Conv {
	cp := *c
	cp.msgs = nil
	return cp
}

// RaiseVersion records that conv's state is known up to change version v
// (a history answer read while online).
func (s *Store) RaiseVersion(convID string, v int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c := s.convs[convID]; c != nil {
		c.Version = max(c.Version, v)
	}
}

// Versions is the versions argument of conversation.sync: the highest
// change seen, for each conversation that has messages here to change.
func (s *Store) Versions() map[string]int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]int64{}
	for id, c := range s.convs {
		if len(c.msgs) > 0 || c.Version > 0 {
			out[id] = c.Version
		}
	}
	return out
}

// SetMembers records a group's members and owner.
func (s *Store) SetMembers(id string, members []string, owner string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.conv(id, frame.GroupChat)
	c.Members, c.Owner, c.MembersKnown = members, owner, true
}

// ForgetMembers marks a group's members as to be asked again.
func (s *Store) ForgetMembers(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c := s.convs[id]; c != nil {
		c.MembersKnown = false
	}
}
