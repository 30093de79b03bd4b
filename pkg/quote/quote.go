// Package quote fills in the previews of the messages replies quote. A
// stored reply names the quoted message by id and seq only; its preview
// (sender, first characters, or that it was recalled) is made from the
// quoted message as it is when the reply is pushed or read, so a recall or
// an edit shows in every reply to it and leaves no copy behind.
package quote

import (
	"context"
	"fmt"

	"easychat/pkg/domain"
)

// Source reads messages of a conversation by seq, as they are now (nil for
// a seq without one).
type Source interface {
	MessagesAt(ctx context.Context, conv string, seqs []int64) ([]*domain.Message, error)
}

// Fill sets the preview of every reply among msgs, reading the quoted
// messages that msgs does not hold itself: one lookup each.
func Fill(ctx context.Context, src Source, msgs []domain.Message) error {
	type key struct {
		conv string
		seq  int64
	}
	have := make(map[key]*domain.Message, len(msgs))
	for i := range msgs {
		have[key{msgs[i].ConversationID, msgs[i].Seq}] = &msgs[i]
	}
	want := map[string][]int64{}
	for _, m := range msgs {
		if q := m.Msg.Quote; q != nil && q.Seq > 0 {
			k := key{m.ConversationID, q.Seq}
			if _, ok := have[k]; !ok {
				have[k] = nil
				want[m.ConversationID] = append(want[m.ConversationID], q.Seq)
			}
		}
	}
	for conv, seqs := range want {
		got, err := src.MessagesAt(ctx, conv, seqs)
		if err != nil {
			return fmt.Errorf("reading quoted messages of %s: %w", conv, err)
		}
		for i, m := range got {
			have[key{conv, seqs[i]}] = m
		}
	}
	// Previews from the messages as read, before any is replaced by one.
	previews := make(map[int]*domain.Message, len(msgs))
	for i, m := range msgs {
		if q := m.Msg.Quote; q != nil {
			q := have[key{m.ConversationID, q.Seq}]
			if q != nil && q.MsgID != m.Msg.Quote.MsgID {
				q = nil // not the message the reply named
			}
			previews[i] = q
		}
	}
	for i, q := range previews {
		msgs[i].Msg.Quote = domain.Preview(*msgs[i].Msg.Quote, q)
	}
	return nil
}
