package frame

import (
	"encoding/json"
	"errors"
	"testing"

	"easychat/pkg/ident"
)

func TestDecodeAcceptsFromIDAlias(t *testing.T) {
	f, err := Decode([]byte(`{"frameType":0,"id":"1","method":"conversation.chat","fromId":"u1","data":{"x":1}}`))
	if err != nil {
		t.Fatal(err)
	}
	if f.FormID != "u1" || f.Method != MethodChat || string(f.Data) != `{"x":1}` {
		t.Fatalf("decoded %+v", f)
	}
	if _, err := Decode([]byte(`{"frameType":`)); err == nil {
		t.Fatal("malformed JSON decoded without error")
	}
}

func TestValidate(t *testing.T) {
	text := Msg{MType: TextMsg, Content: "hi"}
	cases := []struct {
		name string
		c    Chat
		conv string
		err  error
	}{
		{"single sorted", Chat{ChatType: SingleChat, RecvID: "alice", Msg: text}, "alice_zed", nil},
		{"single given id", Chat{ChatType: SingleChat, RecvID: "alice", ConversationID: "alice_zed", Msg: text}, "alice_zed", nil},
		{"single wrong id", Chat{ChatType: SingleChat, RecvID: "alice", ConversationID: "x_y", Msg: text}, "", ErrConvMatch},
		{"group", Chat{ChatType: GroupChat, RecvID: "g-1", Msg: text}, "g-1", nil},
		{"bad type", Chat{ChatType: 7, RecvID: "g-1", Msg: text}, "", ErrChatType},
		{"forged group key", Chat{ChatType: GroupChat, RecvID: "g-1#x1", Msg: text}, "", ErrRecvGroup},
		{"user as group", Chat{ChatType: GroupChat, RecvID: "alice", Msg: text}, "", ErrRecvGroup},
		{"forged user", Chat{ChatType: SingleChat, RecvID: "x1#mallory", Msg: text}, "", ErrRecvUser},
		{"group as user", Chat{ChatType: SingleChat, RecvID: "g-1", Msg: text}, "", ErrRecvUser},
		{"huge recv", Chat{ChatType: SingleChat, RecvID: string(make([]byte, 1<<16)), Msg: text}, "", ErrRecvUser},
		{"no recv", Chat{ChatType: SingleChat, Msg: text}, "", ErrRecv},
		{"self", Chat{ChatType: SingleChat, RecvID: "zed", Msg: text}, "", ErrSelf},
		{"empty", Chat{ChatType: SingleChat, RecvID: "alice"}, "", ErrContent},
		{"mtype", Chat{ChatType: SingleChat, RecvID: "alice", Msg: Msg{MType: 5, Content: "x"}}, "", ErrMType},
		{"too long", Chat{ChatType: SingleChat, RecvID: "alice", Msg: Msg{Content: string(make([]byte, MaxContent+1))}}, "", ErrTooLong},
	}
	for _, tc := range cases {
		conv, err := tc.c.Validate("zed")
		if !errors.Is(err, tc.err) || conv != tc.conv {
			t.Errorf("%s: got (%q, %v), want (%q, %v)", tc.name, conv, err, tc.conv, tc.err)
		}
	}
}

// FuzzDecode: any client message either fails to decode or yields a frame
// whose chat data validates to a well-formed conversation id, never a panic.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{
		`{"frameType":0,"id":"f1","method":"conversation.chat","data":{"chatType":2,"recvId":"bob","msg":{"content":"hi"}}}`,
		`{"frameType":0,"id":"f2","method":"conversation.chat","fromId":"x","data":{"chatType":1,"recvId":"g-1","msg":{"content":"hi"}}}`,
		`{"frameType":1}`, `{"data":null}`, `[]`, `{"frameType":"x"}`, `{"data":{"chatType":1,"recvId":"g-1#x"}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		fr, err := Decode(b)
		if err != nil {
			return
		}
		var c Chat
		if json.Unmarshal(fr.Data, &c) != nil {
			return
		}
		conv, err := c.Validate("zed")
		if err == nil && !ident.IsConversation(conv) {
			t.Fatalf("chat %+v validated to conversation %q", c, conv)
		}
	})
}
