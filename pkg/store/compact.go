package store

import (
	"encoding/json"
	"fmt"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/bson/bsontype"
	"go.mongodb.org/mongo-driver/x/bsonx/bsoncore"

	"easychat/pkg/domain"
	"easychat/pkg/frame"
)

// compact is a domain.Message as seq claims and sealed pages carry it: one string
// of JSON with short keys. FerretDB keeps each document as JSON with every
// field's type written beside it, so a nested message costs about four
// times its JSON; a string costs its length. Claims and pages are most of
// what a stored message writes, so this is most of its bytes on disk.
// A nested document (written by earlier versions) still decodes.
type compact domain.Message

type compactJSON struct {
	ID       string            `json:"i"`
	Conv     string            `json:"c"`
	ChatType int               `json:"t"`
	SendID   string            `json:"s"`
	RecvID   string            `json:"r"`
	SendTime int64             `json:"a"`
	Seq      int64             `json:"q"`
	MType    int               `json:"y"`
	Content  string            `json:"b"`
	MsgID    string            `json:"mi,omitempty"`
	Records  map[string]string `json:"rr,omitempty"`
	Frame    string            `json:"f,omitempty"`
	Read     bool              `json:"d,omitempty"`
	// The message's state (frame.Msg); a quote is stored by id and seq.
	QuoteID    string              `json:"qi,omitempty"`
	QuoteSeq   int64               `json:"qs,omitempty"`
	Mentions   []string            `json:"mn,omitempty"`
	MentionAll bool                `json:"ma,omitempty"`
	Edited     int64               `json:"e,omitempty"`
	Recalled   bool                `json:"x,omitempty"`
	RecalledBy string              `json:"xb,omitempty"`
	Reactions  map[string][]string `json:"re,omitempty"`
	Version    int64               `json:"v,omitempty"`
}

func (c compact) MarshalBSONValue() (bsontype.Type, []byte, error) {
	j := compactJSON{
		ID: c.MsgID, Conv: c.ConversationID, ChatType: c.ChatType, SendID: c.SendID, RecvID: c.RecvID,
		SendTime: c.SendTime, Seq: c.Seq, MType: c.Msg.MType, Content: c.Msg.Content, MsgID: c.Msg.MsgID,
		Records: c.Msg.ReadRecords, Frame: c.ClientFrameID, Read: c.Read,
		Mentions: c.Msg.Mentions, MentionAll: c.Msg.MentionAll, Edited: c.Msg.Edited, Recalled: c.Msg.Recalled,
		RecalledBy: c.Msg.RecalledBy, Reactions: c.Msg.Reactions, Version: c.Msg.Version,
	}
	if q := c.Msg.Quote; q != nil {
		j.QuoteID, j.QuoteSeq = q.MsgID, q.Seq
	}
	b, err := json.Marshal(j)
	if err != nil {
		return 0, nil, fmt.Errorf("encoding message %s: %w", c.MsgID, err)
	}
	return bsontype.String, bsoncore.AppendString(nil, string(b)), nil
}

func (c *compact) UnmarshalBSONValue(t bsontype.Type, data []byte) error {
	switch t {
	case bsontype.EmbeddedDocument:
		return bson.Unmarshal(data, (*domain.Message)(c))
	case bsontype.String:
	default:
		return fmt.Errorf("decoding a stored message: unexpected BSON type %s", t)
	}
	s, _, ok := bsoncore.ReadString(data)
	if !ok {
		return fmt.Errorf("decoding a stored message: malformed string")
	}
	var j compactJSON
	if err := json.Unmarshal([]byte(s), &j); err != nil {
		return fmt.Errorf("decoding a stored message: %w", err)
	}
	*c = compact{
		MsgID: j.ID, ConversationID: j.Conv, ChatType: j.ChatType, SendID: j.SendID, RecvID: j.RecvID,
		SendTime: j.SendTime, Seq: j.Seq, Msg: frame.Msg{MsgID: j.MsgID, MType: j.MType, Content: j.Content, ReadRecords: j.Records,
			Mentions: j.Mentions, MentionAll: j.MentionAll, Edited: j.Edited, Recalled: j.Recalled, RecalledBy: j.RecalledBy,
			Reactions: j.Reactions, Version: j.Version},
		ClientFrameID: j.Frame, Read: j.Read,
	}
	if j.QuoteID != "" {
		c.Msg.Quote = &frame.Quote{MsgID: j.QuoteID, Seq: j.QuoteSeq}
	}
	return nil
}
