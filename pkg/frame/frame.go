// Package frame is the websocket wire protocol shared by the gateway, the
// functions and clients. Field names follow the original system (note the
// `formId` spelling) so existing clients keep working.
package frame

import (
	"encoding/json"
	"errors"

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
	TextMsg = 0
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
)

// Methods of data frames the server sends unasked, besides push.
const (
	MethodRead         = "conversation.read"      // data: ReadNotice
	MethodDelivered    = "conversation.delivered" // data: Delivery
	MethodGroupChanged = "group.changed"          // data: GroupChange
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

// Msg is the content of a chat message.
type Msg struct {
	MsgID       string            `json:"msgId,omitempty"`
	MType       int               `json:"mType"`
	Content     string            `json:"content"`
	ReadRecords map[string]string `json:"readRecords,omitempty"`
}

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
)

// Validate checks a chat from sender and returns its conversation id.
func (c Chat) Validate(sender string) (string, error) {
	if c.ChatType != GroupChat && c.ChatType != SingleChat {
		return "", ErrChatType
	}
	if c.RecvID == "" {
		return "", ErrRecv
	}
	if c.Msg.MType != TextMsg {
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
	return conv, nil
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
