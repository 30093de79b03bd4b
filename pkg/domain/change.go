package domain

import (
	"encoding/json"
	"slices"

	"easychat/pkg/frame"
)

// Change is one entry of a conversation's change log: By changed message
// MsgID (at Seq) with a change of Kind, as the conversation's change number
// Version. Only, when set, is the one user who sees it (a hide).
type Change struct {
	Version        int64
	ConversationID string
	ChatType       int
	Kind           string
	MsgID          string
	Seq            int64
	By             string
	Only           string
	Time           int64
}

// Changed is the frame data of c, with the message as it is now (nil for a
// hide).
func (c Change) Changed(now *Message) frame.Changed {
	out := frame.Changed{ConversationID: c.ConversationID, ChatType: c.ChatType, Version: c.Version, Kind: c.Kind,
		MsgID: c.MsgID, Seq: c.Seq, By: c.By, Time: c.Time}
	if now != nil && c.Kind != frame.KindHide {
		p := now.PushFrame()
		out.Message = &p
	}
	return out
}

// Edit is what a change does: recall, or edit to Content, or add (remove)
// By's Emoji.
type Edit struct {
	Kind    string
	By      string
	Time    int64
	Content string
	Emoji   string
	Remove  bool
}

// Apply returns m changed by e as change number version, and whether it
// changed. A change already applied (m's version is as new) or that cannot
// apply (an edit or a reaction of a recalled message, a reaction over the
// bounds) leaves m as it is. A hide changes only its user's view, never m.
func (m Message) Apply(e Edit, version int64) (Message, bool) {
	if m.Msg.Version >= version || e.Kind == frame.KindHide {
		return m, false
	}
	msg := m.Msg
	switch e.Kind {
	case frame.KindRecall:
		if msg.Recalled {
			return m, false
		}
		msg = frame.Msg{MType: msg.MType, Recalled: true, RecalledBy: e.By}
	case frame.KindEdit:
		if msg.Recalled || msg.Content == e.Content {
			return m, false
		}
		msg.Content, msg.Edited = e.Content, e.Time
	case frame.KindReact:
		if msg.Recalled {
			return m, false
		}
		r, ok := react(msg.Reactions, e.Emoji, e.By, e.Remove)
		if !ok {
			return m, false
		}
		msg.Reactions = r
	default:
		return m, false
	}
	msg.Version = version
	m.Msg = msg
	return m, true
}

// react returns reactions with user's emoji added (removed), a new map, and
// false when nothing changes or the bounds (frame.MaxDistinctEmoji,
// frame.MaxReactionsOnMsg) forbid it.
func react(reactions map[string][]string, emoji, user string, remove bool) (map[string][]string, bool) {
	users := reactions[emoji]
	has := slices.Contains(users, user)
	if has != remove {
		return nil, false
	}
	if !remove {
		total := 0
		for _, us := range reactions {
			total += len(us)
		}
		if total >= frame.MaxReactionsOnMsg || (users == nil && len(reactions) >= frame.MaxDistinctEmoji) {
			return nil, false
		}
	}
	out := make(map[string][]string, len(reactions)+1)
	for k, us := range reactions {
		out[k] = us
	}
	if remove {
		rest := slices.DeleteFunc(slices.Clone(users), func(u string) bool { return u == user })
		if len(rest) == 0 {
			delete(out, emoji)
		} else {
			out[emoji] = rest
		}
	} else {
		out[emoji] = append(slices.Clone(users), user)
	}
	return out, true
}

// Preview is what a reply shows of the message q it quotes (nil: not found).
func Preview(ref frame.Quote, q *Message) *frame.Quote {
	p := &frame.Quote{MsgID: ref.MsgID, Seq: ref.Seq}
	switch {
	case q == nil:
		p.Missing = true
	case q.Msg.Recalled:
		p.SendID, p.Recalled = q.SendID, true
	default:
		p.SendID, p.MType = q.SendID, q.Msg.MType
		p.Content = clip(previewText(q.Msg), frame.QuoteRunes)
	}
	return p
}

// previewText is a message's text, or the name of the file it carries.
func previewText(m frame.Msg) string {
	if m.MType == frame.TextMsg {
		return m.Content
	}
	var f frame.File
	_ = json.Unmarshal([]byte(m.Content), &f) // stored messages were checked
	return f.Name
}

func clip(s string, n int) string {
	for i := range s {
		if n == 0 {
			return s[:i] + "…"
		}
		n--
	}
	return s
}

// Mentions is whom m mentions: its users, and AllMembers for @all.
func (m Message) Mentions() []string {
	out := slices.Clone(m.Msg.Mentions)
	if m.Msg.MentionAll {
		out = append(out, AllMembers)
	}
	return out
}

// AllMembers stands for every member in a Summary's Mentioned (it is no
// user id).
const AllMembers = "*"
