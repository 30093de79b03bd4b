// Package event defines what travels between components: the Kafka records on
// the chat and read topics, and the batches functions post to a gateway's
// internal push endpoint.
package event

import (
	"crypto/sha256"
	"encoding/hex"

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
}

// MsgID derives a message id that is stable across retries of the same client
// frame: the same sender resending frame id F always gets the same msgId, so
// storage can dedupe. Frames without an id get a random one from the caller.
func MsgID(sender, clientFrameID string) string {
	h := sha256.Sum256([]byte(sender + "\x00" + clientFrameID))
	return hex.EncodeToString(h[:16])
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
}
