// Package domain holds the types the chat's services work with: messages,
// groups, users, conversation summaries and positions, and the records they
// publish. It imports no driver: the services depend on it, and so do the
// implementations that store or carry these types (package store on MongoDB,
// package bus on Kafka), so a service can be tested with an in-memory
// implementation of its interfaces.
package domain

import (
	"slices"

	"easychat/pkg/frame"
)

// Message is a stored chat message.
type Message struct {
	MsgID          string    `bson:"_id" json:"msgId"`
	ConversationID string    `bson:"conversationId" json:"conversationId"`
	ChatType       int       `bson:"chatType" json:"chatType"`
	SendID         string    `bson:"sendId" json:"sendId"`
	RecvID         string    `bson:"recvId" json:"recvId"`
	SendTime       int64     `bson:"sendTime" json:"sendTime"`
	Seq            int64     `bson:"seq" json:"seq"`
	Msg            frame.Msg `bson:"msg" json:"msg"`
	ClientFrameID  string    `bson:"clientFrameId,omitempty" json:"-"`
	// Read is set on a single-chat message once its recipient read it.
	Read bool `bson:"read,omitempty" json:"read,omitempty"`
}

// PushFrame is the data of the push frame for this message.
func (m Message) PushFrame() frame.Push {
	msg := m.Msg
	msg.MsgID = m.MsgID
	return frame.Push{
		ConversationID: m.ConversationID,
		ChatType:       m.ChatType,
		SendID:         m.SendID,
		RecvID:         m.RecvID,
		SendTime:       m.SendTime,
		Seq:            m.Seq,
		Msg:            msg,
	}
}

// Saved is one message as SaveChats stored or found it.
type Saved struct {
	Message
	// Fresh is true when this call stored the message, false for a
	// redelivery of one stored before (or a repeat within the batch).
	Fresh bool
	// Repeat is true for a msgId that came earlier in the same batch.
	Repeat bool
}

// User is an account. PasswordHash is a bcrypt hash, never the password.
type User struct {
	ID           string `bson:"_id" json:"userId"`
	Nickname     string `bson:"nickname" json:"nickname"`
	PasswordHash []byte `bson:"passwordHash" json:"-"`
	CreatedAt    int64  `bson:"createdAt" json:"createdAt"`
}

// Summary is what a conversation list shows of a conversation: its newest
// seq, last message and last activity, and each sender's newest seq in it
// (having sent a message, a member has read everything before it).
type Summary struct {
	Seq       int64            `json:"seq"`
	LastMsg   *Message         `json:"lastMsg,omitempty"`
	UpdatedAt int64            `json:"updatedAt"`
	Sent      map[string]int64 `json:"sent,omitempty"`
	// Mentioned is, per user (AllMembers for @all), the newest seq that
	// mentions them.
	Mentioned map[string]int64 `json:"mentioned,omitempty"`
}

// PositionKey names a user's position in a conversation.
type PositionKey struct{ User, Conversation string }

// Position is how far a user has got in a conversation.
type Position struct {
	Read      int64 // everything up to here is read
	Delivered int64 // everything up to here reached one of the user's devices
}

// Group is a chat group; its id is also its conversation id.
type Group struct {
	ID        string   `bson:"_id" json:"groupId"`
	Name      string   `bson:"name" json:"name"`
	Owner     string   `bson:"owner" json:"owner"`
	Members   []string `bson:"members" json:"members"`
	CreatedAt int64    `bson:"createdAt" json:"createdAt"`
	Version   int      `bson:"v" json:"-"`
}

// Has reports whether user is a member.
func (g Group) Has(user string) bool { return slices.Contains(g.Members, user) }

// Record is one message to publish on a topic (Kafka), keyed for its
// partition.
type Record struct {
	Topic string
	Key   string
	Value []byte
}

// ConversationState is one conversation as a user sees it in their list.
type ConversationState struct {
	ConversationID string `json:"conversationId"`
	ChatType       int    `json:"chatType"`
	PeerID         string `json:"peerId,omitempty"`    // single chat: the other user
	GroupName      string `json:"groupName,omitempty"` // group chat
	Seq            int64  `json:"seq"`
	ReadSeq        int64  `json:"readSeq"`
	// Single chat: how far the peer has read, and how far the peer's devices
	// have received (never below the read position).
	PeerReadSeq      int64 `json:"peerReadSeq,omitempty"`
	PeerDeliveredSeq int64 `json:"peerDeliveredSeq,omitempty"`
	Unread           int64 `json:"unread"`
	// Mentioned: a message after ReadSeq mentions the user (or @all).
	Mentioned bool     `json:"mentioned,omitempty"`
	LastMsg   *Message `json:"lastMsg,omitempty"`
	UpdatedAt int64    `json:"updatedAt"`
}

// ListEntry is one conversation of a user's list.
type ListEntry struct {
	ConversationID string `bson:"c" json:"conversationId"`
	ChatType       int    `bson:"t" json:"chatType"`
	Name           string `bson:"n,omitempty" json:"name,omitempty"` // a group's name
	Left           bool   `bson:"l,omitempty" json:"-"`              // a log entry: the user left (or was removed)
	// At is when the user joined (unix ms): a group without messages sorts
	// by it.
	At int64 `bson:"a,omitempty" json:"-"`
}

// Upload is a file a user was granted to upload to a conversation and has
// not yet sent in a message: the file's key in the object store, what was
// declared for it, and when (unix ms). An upload no message uses is an
// orphan once it is old enough, and is deleted.
type Upload struct {
	Key          string `bson:"_id"`
	Conversation string `bson:"conv"`
	User         string `bson:"user"`
	Name         string `bson:"name"`
	Size         int64  `bson:"size"`
	Type         string `bson:"type"`
	At           int64  `bson:"at"`
}
