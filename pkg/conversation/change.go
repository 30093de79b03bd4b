package conversation

import (
	"context"

	"easychat/pkg/domain"
	"easychat/pkg/frame"
	"easychat/pkg/quote"
)

// shown is how user sees msgs of conv: replies with the preview of what
// they quote, and what user deleted for themselves as hidden, without
// content (a client that does not know hidden shows an empty message, not a
// gap in the seqs).
func (s *Service) shown(ctx context.Context, user, conv string, msgs []domain.Message) ([]frame.Push, error) {
	out := make([]frame.Push, len(msgs))
	if len(msgs) == 0 {
		return out, nil
	}
	hidden, err := s.Store.HiddenOf(ctx, user, conv)
	if err != nil {
		return nil, err
	}
	if err := quote.Fill(ctx, s.Store, msgs); err != nil {
		return nil, err
	}
	for i, m := range msgs {
		if hidden[m.Seq] {
			m.Msg = frame.Msg{MType: m.Msg.MType, Hidden: true, Version: m.Msg.Version}
		}
		out[i] = m.PushFrame()
	}
	return out, nil
}

// syncChanges adds to res up to left changes after versions in the
// conversations of cs the caller named, each with its message as it is now
// (one lookup per changed message), oldest first per conversation.
func (s *Service) syncChanges(ctx context.Context, user string, cs []domain.ConversationState, versions map[string]int64, left int64, res *SyncResult) error {
	for _, c := range cs {
		after, ok := versions[c.ConversationID]
		if !ok {
			continue
		}
		if left <= 0 {
			res.More = true
			return nil
		}
		changes, err := s.Store.Changes(ctx, c.ConversationID, after, left)
		if err != nil {
			return err
		}
		left -= int64(len(changes))
		if left == 0 {
			// Perhaps more: the client asks again from the last version.
			res.More = true
		}
		var seqs []int64
		for _, ch := range changes {
			if ch.Kind != frame.KindHide {
				seqs = append(seqs, ch.Seq)
			}
		}
		now, err := s.Store.MessagesAt(ctx, c.ConversationID, seqs)
		if err != nil {
			return err
		}
		bySeq := map[int64]domain.Message{}
		var msgs []domain.Message
		for _, m := range now {
			if m != nil {
				msgs = append(msgs, *m)
			}
		}
		shown, err := s.shown(ctx, user, c.ConversationID, msgs)
		if err != nil {
			return err
		}
		for i, p := range shown {
			m := msgs[i]
			m.Msg = p.Msg
			bySeq[m.Seq] = m
		}
		for _, ch := range changes {
			if ch.Only != "" && ch.Only != user {
				// Another's hide: the version still counts, as nothing.
				res.Changes = append(res.Changes, frame.Changed{ConversationID: ch.ConversationID, ChatType: ch.ChatType, Version: ch.Version})
				continue
			}
			var m *domain.Message
			if got, ok := bySeq[ch.Seq]; ok && got.MsgID == ch.MsgID {
				m = &got
			}
			res.Changes = append(res.Changes, ch.Changed(m))
		}
		if res.More {
			return nil
		}
	}
	return nil
}
