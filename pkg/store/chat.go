package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/mongo"
	"go.mongodb.org/mongo-driver/mongo/options"

	"easychat/pkg/event"
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
	// Pushed is set once the message was handed to the gateways, so a
	// redelivered record is not pushed twice.
	Pushed bool `bson:"pushed" json:"-"`
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

type seqClaim struct {
	ID    string `bson:"_id"`
	MsgID string `bson:"msgId"`
}

func claimID(conv string, seq int64) string { return fmt.Sprintf("%s#%d", conv, seq) }

// convDoc is a conversation: its sequence counter and last message.
type convDoc struct {
	ID       string   `bson:"_id"`
	ChatType int      `bson:"chatType"`
	Members  []string `bson:"members,omitempty"`
	Seq      int64    `bson:"seq"`
	LastMsg  *Message `bson:"lastMsg,omitempty"`
	// Sent is each sender's latest seq here: sending implies having read
	// what came before, so it counts as a read position at no extra write.
	Sent      map[string]int64 `bson:"sent,omitempty"`
	UpdatedAt int64            `bson:"updatedAt"`
}

// SaveChat stores ev exactly once and returns it with its sequence number.
// fresh is false when ev's msgId was already stored (a redelivery).
//
// The sequence number is claimed by inserting "<conversation>#<seq>" into
// seq_claim, whose unique _id makes each seq go to one message even with
// concurrent writers; a retry after a crash finds its own claim again, so
// there are no gaps and no duplicates without transactions.
func (s *Store) SaveChat(ctx context.Context, ev event.Chat) (Message, bool, error) {
	logs := s.db.Collection(ChatLog)
	var existing Message
	err := logs.FindOne(ctx, bson.D{{Key: "_id", Value: ev.MsgID}}).Decode(&existing)
	if err == nil {
		return existing, false, s.bumpConversation(ctx, existing)
	}
	if !errors.Is(err, mongo.ErrNoDocuments) {
		return Message{}, false, fmt.Errorf("looking up message %s: %w", ev.MsgID, err)
	}

	seq, err := s.claimSeq(ctx, ev.ConversationID, ev.MsgID)
	if err != nil {
		return Message{}, false, err
	}
	m := Message{
		MsgID: ev.MsgID, ConversationID: ev.ConversationID, ChatType: ev.ChatType,
		SendID: ev.SendID, RecvID: ev.RecvID, SendTime: ev.SendTime, Seq: seq,
		Msg: frame.Msg{MType: ev.Msg.MType, Content: ev.Msg.Content}, ClientFrameID: ev.ClientFrameID,
	}
	if _, err := logs.InsertOne(ctx, m); err != nil {
		if !isDup(err) {
			return Message{}, false, fmt.Errorf("inserting message %s: %w", ev.MsgID, err)
		}
		// A concurrent delivery of the same record won; use its row.
		if err := logs.FindOne(ctx, bson.D{{Key: "_id", Value: ev.MsgID}}).Decode(&m); err != nil {
			return Message{}, false, fmt.Errorf("reading message %s: %w", ev.MsgID, err)
		}
		return m, false, s.bumpConversation(ctx, m)
	}
	return m, true, s.bumpConversation(ctx, m)
}

// claimSeq returns the seq claimed for msgID in conv, claiming the next free one.
func (s *Store) claimSeq(ctx context.Context, conv, msgID string) (int64, error) {
	var c convDoc
	err := s.db.Collection(Conversation).FindOne(ctx, bson.D{{Key: "_id", Value: conv}},
		options.FindOne().SetProjection(bson.D{{Key: "seq", Value: 1}})).Decode(&c)
	if err != nil && !errors.Is(err, mongo.ErrNoDocuments) {
		return 0, fmt.Errorf("reading conversation %s: %w", conv, err)
	}
	claims := s.db.Collection(SeqClaim)
	for seq := c.Seq + 1; ; seq++ {
		_, err := claims.InsertOne(ctx, seqClaim{ID: claimID(conv, seq), MsgID: msgID})
		if err == nil {
			return seq, nil
		}
		if !isDup(err) {
			return 0, fmt.Errorf("claiming seq %d of %s: %w", seq, conv, err)
		}
		var other seqClaim
		if err := claims.FindOne(ctx, bson.D{{Key: "_id", Value: claimID(conv, seq)}}).Decode(&other); err != nil {
			return 0, fmt.Errorf("reading claim %d of %s: %w", seq, conv, err)
		}
		if other.MsgID == msgID {
			return seq, nil // our own claim from an interrupted attempt
		}
	}
}

// bumpConversation advances the conversation's seq and last message to m
// unless it is already past it (a redelivery of an older message).
func (s *Store) bumpConversation(ctx context.Context, m Message) error {
	convs := s.db.Collection(Conversation)
	last := m
	last.Pushed = false
	set := bson.D{{Key: "seq", Value: m.Seq}, {Key: "lastMsg", Value: last}, {Key: "updatedAt", Value: time.Now().UnixMilli()}}
	if safeField(m.SendID) {
		set = append(set, bson.E{Key: "sent." + m.SendID, Value: m.Seq})
	}
	for attempt := 0; attempt < 3; attempt++ {
		res, err := convs.UpdateOne(ctx,
			bson.D{{Key: "_id", Value: m.ConversationID}, {Key: "seq", Value: bson.D{{Key: "$lt", Value: m.Seq}}}},
			bson.D{{Key: "$set", Value: set}})
		if err != nil {
			return fmt.Errorf("updating conversation %s: %w", m.ConversationID, err)
		}
		if res.MatchedCount > 0 {
			return nil
		}
		doc := convDoc{ID: m.ConversationID, ChatType: m.ChatType, Seq: m.Seq, LastMsg: &last, UpdatedAt: time.Now().UnixMilli()}
		if safeField(m.SendID) {
			doc.Sent = map[string]int64{m.SendID: m.Seq}
		}
		if m.ChatType == frame.SingleChat {
			doc.Members = []string{m.SendID, m.RecvID}
		}
		_, err = convs.InsertOne(ctx, doc)
		if err == nil || isDup(err) {
			if err == nil {
				return nil
			}
			// It exists: either already at or past m.Seq (done), or created
			// concurrently below it (update again).
			var c convDoc
			if err := convs.FindOne(ctx, bson.D{{Key: "_id", Value: m.ConversationID}}).Decode(&c); err != nil {
				return fmt.Errorf("reading conversation %s: %w", m.ConversationID, err)
			}
			if c.Seq >= m.Seq {
				return nil
			}
			continue
		}
		return fmt.Errorf("creating conversation %s: %w", m.ConversationID, err)
	}
	return fmt.Errorf("updating conversation %s: contended", m.ConversationID)
}

// safeField reports whether a user id can be a document field name (ids
// from our own registration always can; a token's subject might not).
func safeField(s string) bool {
	return s != "" && !strings.ContainsAny(s, ".$") && !strings.HasPrefix(s, "$")
}

// MarkPushed records that msgIDs were handed to the gateways. One update per
// id: lookups by _id are the ones every Mongo-compatible backend indexes.
func (s *Store) MarkPushed(ctx context.Context, msgIDs ...string) error {
	logs := s.db.Collection(ChatLog)
	for _, id := range msgIDs {
		_, err := logs.UpdateOne(ctx, bson.D{{Key: "_id", Value: id}},
			bson.D{{Key: "$set", Value: bson.D{{Key: "pushed", Value: true}}}})
		if err != nil {
			return fmt.Errorf("marking %s pushed: %w", id, err)
		}
	}
	return nil
}

// Messages returns up to limit messages of conv with seq > after, oldest first.
func (s *Store) Messages(ctx context.Context, conv string, after int64, limit int64) ([]Message, error) {
	cur, err := s.db.Collection(ChatLog).Find(ctx,
		bson.D{{Key: "conversationId", Value: conv}, {Key: "seq", Value: bson.D{{Key: "$gt", Value: after}}}},
		options.Find().SetSort(bson.D{{Key: "seq", Value: 1}}).SetLimit(limit))
	if err != nil {
		return nil, fmt.Errorf("reading messages of %s: %w", conv, err)
	}
	var out []Message
	if err := cur.All(ctx, &out); err != nil {
		return nil, fmt.Errorf("decoding messages of %s: %w", conv, err)
	}
	return out, nil
}
