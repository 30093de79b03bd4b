// Package frame is the websocket wire protocol shared by the gateway, the
// functions and clients. Field names follow the original system (note the
// `formId` spelling) so existing clients keep working.
package frame

import (
	"encoding/json"
	"errors"
	"unicode"
	"unicode/utf8"

	"easychat/pkg/ident"
)

// Type is the frameType field.
type Type int

const (
	Data  Type = 0
	Ping  Type = 1
	Ack   Type = 2
	NoAck Type = 3
	Error Type = 9
)

// Chat types, as in the original.
const (
	GroupChat  = 1
	SingleChat = 2
)

// Message types.
const (
	TextMsg  = 0
	ImageMsg = 1 // content: a File with Width and Height
	FileMsg  = 2 // content: a File
)

// Methods a client may call.
const (
	MethodChat     = "conversation.chat"
	MethodMarkChat = "conversation.markChat"
	// MethodMarkDelivered reports how far a device has received a single
	// chat, so its sender can show "delivered".
	MethodMarkDelivered = "conversation.markDelivered"
	MethodSync          = "conversation.sync"
	MethodOnline        = "user.online"
	MethodPush          = "push"
	// Changes to a stored message; they travel as chats do (data: Change).
	MethodRecall = "conversation.recall"
	MethodEdit   = "conversation.edit"
	MethodReact  = "conversation.react"
	MethodHide   = "conversation.hide" // delete for me
	// MethodTyping is both the client's frame and the one others get
	// (data: Typing); it is never stored.
	MethodTyping = "conversation.typing"
)

// ChangeMethods are the methods that change a stored message, by the kind
// of change each makes.
var ChangeMethods = map[string]string{
	MethodRecall: KindRecall, MethodEdit: KindEdit, MethodReact: KindReact, MethodHide: KindHide,
}

// Kinds of change (Changed.Kind).
const (
	KindRecall = "recall"
	KindEdit   = "edit"
	KindReact  = "react"
	KindHide   = "hide"
)

// Methods of data frames the server sends unasked, besides push.
const (
	MethodRead         = "conversation.read"      // data: ReadNotice
	MethodDelivered    = "conversation.delivered" // data: Delivery
	MethodGroupChanged = "group.changed"          // data: GroupChange
	MethodChanged      = "conversation.changed"   // data: Changed
)

// Headers of the gateway's call to the function serving a frame.
const (
	// HeaderFrameID carries the client's frame id, so functions can derive
	// ids that are stable across the client's retries.
	HeaderFrameID = "X-Easychat-Frame-Id"
	// HeaderMethod carries the frame's method, for functions serving several.
	HeaderMethod = "X-Easychat-Method"
	// HeaderClient carries the client's address as the gateway saw it, for
	// limits per address (login, register).
	HeaderClient = "X-Easychat-Client"
	// HeaderOrigin names the socket a chat frame was written on
	// (event.Chat.Origin).
	HeaderOrigin = "X-Easychat-Origin"
)

// Frame is one JSON text message in either direction.
type Frame struct {
	FrameType Type            `json:"frameType"`
	ID        string          `json:"id,omitempty"`
	AckSeq    int             `json:"ackSeq,omitempty"`
	Method    string          `json:"method,omitempty"`
	FormID    string          `json:"formId,omitempty"`
	Data      json.RawMessage `json:"data,omitempty"`
	ErrMsg    string          `json:"errMsg,omitempty"`
}

// Decode parses a client frame. It accepts `fromId` as an alias of `formId`;
// callers must overwrite FormID with the authenticated user anyway.
func Decode(b []byte) (Frame, error) {
	var in struct {
		Frame
		FromID string `json:"fromId"`
	}
	if err := json.Unmarshal(b, &in); err != nil {
		return Frame{}, err
	}
	f := in.Frame
	if f.FormID == "" {
		f.FormID = in.FromID
	}
	return f, nil
}

// Msg is the content of a chat message and its state. Clients set MType,
// Content, Quote (its MsgID), Mentions and MentionAll; the rest is the
// server's.
type Msg struct {
	MsgID       string            `json:"msgId,omitempty"`
	MType       int               `json:"mType"`
	Content     string            `json:"content"`
	ReadRecords map[string]string `json:"readRecords,omitempty"`
	// Quote is the message this one answers: its preview when pushed or
	// read, only its id and seq when stored (so a recall leaves no copy).
	Quote      *Quote   `json:"quote,omitempty"`
	Mentions   []string `json:"mentions,omitempty"`   // group members this message mentions
	MentionAll bool     `json:"mentionAll,omitempty"` // @all (the group's owner only)
	Edited     int64    `json:"edited,omitempty"`     // unix ms of the last edit
	Recalled   bool     `json:"recalled,omitempty"`   // Content is gone
	RecalledBy string   `json:"recalledBy,omitempty"`
	// Reactions are emoji → the users who reacted with it, in order.
	Reactions map[string][]string `json:"reactions,omitempty"`
	// Version is the conversation's change number last applied to this
	// message (0: never changed); a client keeps the higher one.
	Version int64 `json:"version,omitempty"`
	// Hidden is set, with Content empty, on what the reader deleted for
	// themselves.
	Hidden bool `json:"hidden,omitempty"`
}

// Quote refers to the message a reply answers, and previews it.
type Quote struct {
	MsgID    string `json:"msgId"`
	Seq      int64  `json:"seq,omitempty"`
	SendID   string `json:"sendId,omitempty"`
	MType    int    `json:"mType,omitempty"`
	Content  string `json:"content,omitempty"` // the first QuoteRunes characters
	Recalled bool   `json:"recalled,omitempty"`
	Missing  bool   `json:"missing,omitempty"` // not found (not stored)
}

// QuoteRunes bounds a quote's preview.
const QuoteRunes = 80

// MaxMentions bounds the users one message mentions.
const MaxMentions = 50

// Chat is the data of a conversation.chat frame.
type Chat struct {
	ConversationID string `json:"conversationId,omitempty"`
	ChatType       int    `json:"chatType"`
	RecvID         string `json:"recvId"`
	Msg            Msg    `json:"msg"`
}

// Push is the data of a push frame sent to a recipient.
type Push struct {
	ConversationID string `json:"conversationId"`
	ChatType       int    `json:"chatType"`
	SendID         string `json:"sendId"`
	RecvID         string `json:"recvId,omitempty"`
	SendTime       int64  `json:"sendTime"`
	Seq            int64  `json:"seq"`
	Msg            Msg    `json:"msg"`
}

// Change is the data of a frame that changes a stored message: recall,
// edit (Content), react (Emoji, Remove) or hide.
type Change struct {
	ConversationID string `json:"conversationId"`
	MsgID          string `json:"msgId"`
	Content        string `json:"content,omitempty"`
	Emoji          string `json:"emoji,omitempty"`
	Remove         bool   `json:"remove,omitempty"`
}

// Changed is the data of a conversation.changed frame, and one change of a
// sync's answer: By changed message MsgID (at Seq) of the conversation, as
// its change number Version; Message is that message as it is now (none
// for a hide, which only removes it from By's view).
type Changed struct {
	ConversationID string `json:"conversationId"`
	ChatType       int    `json:"chatType"`
	Version        int64  `json:"version"`
	Kind           string `json:"kind"`
	MsgID          string `json:"msgId"`
	Seq            int64  `json:"seq"`
	By             string `json:"by"`
	Time           int64  `json:"time"`
	Message        *Push  `json:"message,omitempty"`
}

// Typing is the data of a conversation.typing frame: from a client, that
// its user is (or stopped) typing; to the others, with UserID and how long
// to show it (TTL, ms) unless repeated.
type Typing struct {
	ConversationID string `json:"conversationId"`
	ChatType       int    `json:"chatType,omitempty"`
	UserID         string `json:"userId,omitempty"`
	Typing         bool   `json:"typing"`
	TTL            int64  `json:"ttl,omitempty"`
}

// ChatAck is the data of the ack the sender gets for a chat frame.
type ChatAck struct {
	MsgID          string `json:"msgId"`
	ConversationID string `json:"conversationId"`
}

// ReadNotice is the data of a conversation.read frame: everything up to
// ReadSeq in the conversation is read by ReaderID.
type ReadNotice struct {
	ConversationID string   `json:"conversationId"`
	ChatType       int      `json:"chatType"`
	ReaderID       string   `json:"readerId"`
	ReadSeq        int64    `json:"readSeq"`
	MsgIDs         []string `json:"msgIds,omitempty"`
}

// Delivery is the data of a conversation.delivered frame: a device of UserID
// holds the single chat up to DeliveredSeq.
type Delivery struct {
	ConversationID string `json:"conversationId"`
	ChatType       int    `json:"chatType"`
	UserID         string `json:"userId"`
	DeliveredSeq   int64  `json:"deliveredSeq"`
}

// GroupChange is the data of a group.changed frame.
type GroupChange struct {
	GroupID string   `json:"groupId"`
	Name    string   `json:"name"`
	By      string   `json:"by"`
	Added   []string `json:"added,omitempty"`
	Removed []string `json:"removed,omitempty"`
}

// MaxContent bounds one message's text; the gateway also bounds whole frames.
const MaxContent = 16 << 10

// Validation errors; their text goes into error frames as is.
var (
	ErrChatType  = errors.New("chatType must be 1 (group) or 2 (single)")
	ErrRecv      = errors.New("recvId is required")
	ErrContent   = errors.New("msg.content is required")
	ErrTooLong   = errors.New("msg.content is too long")
	ErrSelf      = errors.New("cannot chat with yourself")
	ErrMType     = errors.New("unsupported msg.mType")
	ErrConvMatch = errors.New("conversationId does not match the recipient")
	ErrRecvUser  = errors.New("recvId is not a user id")
	ErrRecvGroup = errors.New("recvId is not a group id")
	ErrQuote     = errors.New("msg.quote.msgId is not a message id")
	ErrMentions  = errors.New("msg.mentions: group chats only, at most 50 distinct user ids")
)

// Validate checks a chat from sender and returns its conversation id.
func (c Chat) Validate(sender string) (string, error) {
	if c.ChatType != GroupChat && c.ChatType != SingleChat {
		return "", ErrChatType
	}
	if c.RecvID == "" {
		return "", ErrRecv
	}
	if c.Msg.MType != TextMsg && c.Msg.MType != ImageMsg && c.Msg.MType != FileMsg {
		return "", ErrMType
	}
	if c.Msg.Content == "" {
		return "", ErrContent
	}
	if len(c.Msg.Content) > MaxContent {
		return "", ErrTooLong
	}
	var conv string
	if c.ChatType == SingleChat {
		if c.RecvID == sender {
			return "", ErrSelf
		}
		if !ident.IsUser(c.RecvID) {
			return "", ErrRecvUser
		}
		conv = SingleConversationID(sender, c.RecvID)
	} else {
		if !ident.IsGroup(c.RecvID) {
			return "", ErrRecvGroup
		}
		conv = c.RecvID
	}
	if c.ConversationID != "" && c.ConversationID != conv {
		return "", ErrConvMatch
	}
	if c.Msg.Quote != nil && !ident.IsMsgID(c.Msg.Quote.MsgID) {
		return "", ErrQuote
	}
	if c.Msg.MType != TextMsg {
		if _, err := ParseFile(c.Msg.MType, c.Msg.Content, conv, sender); err != nil {
			return "", err
		}
	}
	if err := c.validMentions(); err != nil {
		return "", err
	}
	return conv, nil
}

func (c Chat) validMentions() error {
	if len(c.Msg.Mentions) == 0 && !c.Msg.MentionAll {
		return nil
	}
	if c.ChatType != GroupChat || len(c.Msg.Mentions) > MaxMentions {
		return ErrMentions
	}
	seen := make(map[string]bool, len(c.Msg.Mentions))
	for _, u := range c.Msg.Mentions {
		if !ident.IsUser(u) || seen[u] {
			return ErrMentions
		}
		seen[u] = true
	}
	return nil
}

// Accepted is the chat as a client may send it: the fields it sets, the
// quote by id only, the server's fields dropped.
func (c Chat) Accepted() Chat {
	m := Msg{MType: c.Msg.MType, Content: c.Msg.Content, Mentions: c.Msg.Mentions, MentionAll: c.Msg.MentionAll}
	if c.Msg.Quote != nil {
		m.Quote = &Quote{MsgID: c.Msg.Quote.MsgID}
	}
	c.Msg = m
	return c
}

// SingleConversationID is the two user ids sorted and joined with "_".
func SingleConversationID(a, b string) string { return ident.Single(a, b) }

// SinglePeer is the other user of single conversation conv as seen by user;
// ok is false when conv is not a well-formed single conversation or user is
// not in it.
func SinglePeer(conv, user string) (peer string, ok bool) {
	a, b, single := ident.Peers(conv)
	switch {
	case !single:
		return "", false
	case a == user:
		return b, true
	case b == user:
		return a, true
	}
	return "", false
}

// Bounds of reactions on one message.
const (
	MaxEmojiBytes     = 32
	MaxEmojiRunes     = 8
	MaxDistinctEmoji  = 20
	MaxReactionsOnMsg = 1000
)

// Errors of change frames; their text goes into error frames as is.
var (
	ErrChangeConv = errors.New("conversationId is not a conversation id")
	ErrChangeMsg  = errors.New("msgId is not a message id")
	ErrEmoji      = errors.New("invalid emoji: 1-8 characters, no letters, digits, spaces or control characters")
)

// Validate checks the data of a change frame of kind (a ChangeMethods value).
func (c Change) Validate(kind string) error {
	if !ident.IsConversation(c.ConversationID) {
		return ErrChangeConv
	}
	if !ident.IsMsgID(c.MsgID) {
		return ErrChangeMsg
	}
	switch kind {
	case KindEdit:
		if c.Content == "" {
			return ErrContent
		}
		if len(c.Content) > MaxContent {
			return ErrTooLong
		}
	case KindReact:
		if !ValidEmoji(c.Emoji) {
			return ErrEmoji
		}
	}
	return nil
}

// ValidEmoji reports whether s may be a reaction: a few characters of
// UTF-8 none of which is ASCII, a control, a space or invisible (bar the
// joiners and selectors emoji are built with).
func ValidEmoji(s string) bool {
	if s == "" || len(s) > MaxEmojiBytes || !utf8.ValidString(s) || utf8.RuneCountInString(s) > MaxEmojiRunes {
		return false
	}
	for _, r := range s {
		switch {
		case r == 0x200D, r >= 0xFE00 && r <= 0xFE0F, r >= 0xE0020 && r <= 0xE007F:
			// zero-width joiner, variation selectors, tag characters (flags)
		case r < 0x80, unicode.IsControl(r), unicode.IsSpace(r), unicode.Is(unicode.Cf, r):
			return false
		}
	}
	return true
}
