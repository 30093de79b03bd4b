package store

import (
	"reflect"
	"testing"

	"go.mongodb.org/mongo-driver/bson"

	"easychat/pkg/domain"
	"easychat/pkg/frame"
)

func TestCompactRoundTrip(t *testing.T) {
	m := domain.Message{
		MsgID: "m1", ConversationID: "a_b", ChatType: 1, SendID: "a", RecvID: "b", SendTime: 1700000000000, Seq: 42,
		Msg:           frame.Msg{MsgID: "m1", MType: 3, Content: "héllo \"quoted\" \u2028", ReadRecords: map[string]string{"b": "1"}},
		ClientFrameID: "f1", Read: true,
	}
	raw, err := bson.Marshal(claimDoc{ID: "a_b#42", MsgID: "m1", M: (*compact)(&m)})
	if err != nil {
		t.Fatal(err)
	}
	if v := bson.Raw(raw).Lookup("m"); v.Type != bson.TypeString {
		t.Fatalf("claim carries the message as %s, want a string", v.Type)
	}
	var back claimDoc
	if err := bson.Unmarshal(raw, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(domain.Message(*back.M), m) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", domain.Message(*back.M), m)
	}
}

func TestCompactReadsNestedMessages(t *testing.T) {
	m := domain.Message{MsgID: "m1", ConversationID: "a_b", ChatType: 1, SendID: "a", RecvID: "b", Seq: 7, Msg: frame.Msg{Content: "x"}}
	raw, err := bson.Marshal(bson.D{{Key: "_id", Value: "a_b#7"}, {Key: "m", Value: m}})
	if err != nil {
		t.Fatal(err)
	}
	var back claimDoc
	if err := bson.Unmarshal(raw, &back); err != nil {
		t.Fatal(err)
	}
	if back.M == nil || !reflect.DeepEqual(domain.Message(*back.M), m) {
		t.Fatalf("nested message decoded as %+v, want %+v", back.M, m)
	}
}

func TestCompactRejectsOtherTypes(t *testing.T) {
	raw, _ := bson.Marshal(bson.D{{Key: "m", Value: int32(5)}})
	var back claimDoc
	if err := bson.Unmarshal(raw, &back); err == nil {
		t.Fatal("an int decoded as a message")
	}
	raw, _ = bson.Marshal(bson.D{{Key: "m", Value: "{not json"}})
	if err := bson.Unmarshal(raw, &back); err == nil {
		t.Fatal("malformed JSON decoded as a message")
	}
}
