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
		`{"frameType":0,"id":"f3","method":"conversation.chat","data":{"chatType":1,"recvId":"g-1","msg":{"content":"hi","quote":{"msgId":"00000000000000000000000000000001"},"mentions":["bob"],"mentionAll":true}}}`,
		`{"frameType":0,"id":"f4","method":"conversation.react","data":{"conversationId":"g-1","msgId":"00000000000000000000000000000001","emoji":"👍🏽"}}`,
		`{"frameType":0,"id":"f5","method":"conversation.edit","data":{"conversationId":"ann_bob","msgId":"00000000000000000000000000000001","content":"x"}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		fr, err := Decode(b)
		if err != nil {
			return
		}
		var ch Change
		if json.Unmarshal(fr.Data, &ch) == nil {
			for _, kind := range ChangeMethods {
				if ch.Validate(kind) != nil {
					continue
				}
				if !ident.IsConversation(ch.ConversationID) || !ident.IsMsgID(ch.MsgID) ||
					(kind == KindReact && (ch.Emoji == "" || len(ch.Emoji) > MaxEmojiBytes)) || (kind == KindEdit && len(ch.Content) > MaxContent) {
					t.Fatalf("%s %+v validated", kind, ch)
				}
			}
		}
		var c Chat
		if json.Unmarshal(fr.Data, &c) != nil {
			return
		}
		conv, err := c.Validate("zed")
		if err == nil && !ident.IsConversation(conv) {
			t.Fatalf("chat %+v validated to conversation %q", c, conv)
		}
		if err == nil && (len(c.Msg.Mentions) > MaxMentions || (c.Msg.Quote != nil && !ident.IsMsgID(c.Msg.Quote.MsgID))) {
			t.Fatalf("chat %+v validated with bad mentions or quote", c)
		}
	})
}

func TestValidEmoji(t *testing.T) {
	for s, want := range map[string]bool{
		"👍": true, "❤️": true, "👍🏽": true, "👨‍👩‍👧": true, "🇫🇷": true, "🏴󠁧󠁢󠁳󠁣󠁴󠁿": true,
		"": false, "a": false, ":)": false, "👍 ": false, "\u200b": false, "\u202e👍": false,
		"👍👍👍👍👍👍👍👍👍": false, "x👍": false,
	} {
		if got := ValidEmoji(s); got != want {
			t.Errorf("ValidEmoji(%q) = %v, want %v", s, got, want)
		}
	}
}
