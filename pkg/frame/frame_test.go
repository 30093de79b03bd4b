package frame

import (
	"errors"
	"testing"
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
		{"group", Chat{ChatType: GroupChat, RecvID: "g1", Msg: text}, "g1", nil},
		{"bad type", Chat{ChatType: 7, RecvID: "g1", Msg: text}, "", ErrChatType},
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
