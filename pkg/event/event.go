// Package event defines what travels between components: the Kafka records on
// the chat and read topics, and the batches functions post to a gateway's
// internal push endpoint.
package event

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"

	"easychat/pkg/frame"
)

// Kafka topics; records are keyed by conversation id so one conversation stays
// in one partition, in order.
const (
	TopicChat = "msg-chat-transfer"
	TopicRead = "msg-read-transfer"
	TopicDead = "msg-dead-letter"
)

// Chat is one accepted chat message on TopicChat.
type Chat struct {
	MsgID          string    `json:"msgId"`
	ConversationID string    `json:"conversationId"`
	ChatType       int       `json:"chatType"`
	SendID         string    `json:"sendId"`
	RecvID         string    `json:"recvId"`
	SendTime       int64     `json:"sendTime"` // unix milliseconds, set by the chat function
	ClientFrameID  string    `json:"clientFrameId,omitempty"`
	Msg            frame.Msg `json:"msg"`
	// Origin names the socket the chat was written on ("<gateway
	// instance>/<socket>"), so that its push skips that socket, which has the
	// ack. Not stored: a message pushed again later goes to every socket.
	Origin string `json:"origin,omitempty"`
	// Change, when set, makes the record a change of the stored message
	// Change.MsgID instead of a message: MsgID is then the change's own id
	// (stable across resends, as a message's), SendID who made it, and
	// SendTime when it was accepted.
	Change *Change `json:"change,omitempty"`
}

// Change is what a change record does to its message.
type Change struct {
	Kind    string `json:"kind"` // frame.KindRecall, KindEdit, KindReact, KindHide
	MsgID   string `json:"msgId"`
	Seq     int64  `json:"seq"`
	Content string `json:"content,omitempty"` // edit: the new text
	Emoji   string `json:"emoji,omitempty"`   // react
	Remove  bool   `json:"remove,omitempty"`  // react: take it away
}

// MsgID derives a message id that is stable across resends of one client
// frame: the same sender resending frame id F with the same content to the
// same conversation always gets the same msgId, so storage dedupes it. The
// conversation and content are part of it so that a client whose frame-id
// counter restarts (new session) does not have new messages taken for resends.
func MsgID(sender, conversationID, clientFrameID, content string) string {
	h := sha256.New()
	for _, s := range []string{sender, conversationID, clientFrameID, content} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// Push is a batch for one gateway instance's POST /internal/push: each item is
// one frame for a set of users, encoded once and written to all their sockets.
type Push struct {
	Items []PushItem `json:"items"`
}

// PushItem is one frame to deliver to every socket of Users on the instance.
type PushItem struct {
	Users []string    `json:"users"`
	Frame frame.Frame `json:"frame"`
	// Origin is the socket a chat message was written on (Chat.Origin): the
	// gateway holding it skips it.
	Origin string `json:"origin,omitempty"`
	// Next are more frames for the same Users, delivered after Frame in
	// order: consecutive messages of a group list their members once.
	Next []PushFrame `json:"next,omitempty"`
}

// PushFrame is a further frame of a PushItem.
type PushFrame struct {
	Frame  frame.Frame `json:"frame"`
	Origin string      `json:"origin,omitempty"`
}

// Read is a receipt on TopicRead: reader has read msgIDs (and so everything
// up to their seq) in a conversation, or (DeliveredSeq) has received
// everything up to that seq on a device.
type Read struct {
	ConversationID string   `json:"conversationId"`
	ChatType       int      `json:"chatType"`
	ReaderID       string   `json:"readerId"`
	MsgIDs         []string `json:"msgIds,omitempty"`
	ReadSeq        int64    `json:"readSeq,omitempty"`
	DeliveredSeq   int64    `json:"deliveredSeq,omitempty"`
	Time           int64    `json:"time"`
}

// DecodeBatch parses a connector invocation body: one record, or a JSON array
// of records when the connector batches.
func DecodeBatch[T any](body []byte) ([]T, error) {
	body = bytes.TrimSpace(body)
	if len(body) > 0 && body[0] == '[' {
		var out []T
		if err := json.Unmarshal(body, &out); err != nil {
			return nil, err
		}
		return out, nil
	}
	var one T
	if err := json.Unmarshal(body, &one); err != nil {
		return nil, err
	}
	return []T{one}, nil
}
