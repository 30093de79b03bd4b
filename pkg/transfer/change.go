package transfer

import (
	"context"
	"encoding/json"
	"fmt"

	"easychat/pkg/domain"
	"easychat/pkg/event"
	"easychat/pkg/frame"
	"easychat/pkg/ident"
	"easychat/pkg/push"
	"easychat/pkg/quote"
	"easychat/pkg/reject"
)

// checkChange refuses a change record that can never apply.
func checkChange(c *event.Change) error {
	if c == nil {
		return nil
	}
	switch c.Kind {
	case frame.KindRecall, frame.KindHide, frame.KindEdit, frame.KindReact:
	default:
		return reject.Invalid("bad record: change kind %q", c.Kind)
	}
	if !ident.IsMsgID(c.MsgID) || c.Seq < 1 {
		return reject.Invalid("bad record: changed message")
	}
	if c.Kind == frame.KindReact && !frame.ValidEmoji(c.Emoji) {
		return reject.Invalid("bad record: emoji")
	}
	return nil
}

// change logs change records, applies each to its message in order and
// pushes the message as it is now to the conversation's members (a hide to
// its user only). The chat function authorized each change; what depends
// on the message's state (recalled already, the reaction bounds) is decided
// here, in the conversation's order. A change logged by an earlier attempt
// is applied again only if the message does not have it (its version), and
// pushed again.
func (s *Service) change(ctx context.Context, evs []event.Chat) error {
	logged, err := s.Store.AppendChanges(ctx, evs)
	if err != nil {
		return err
	}
	members := map[string][]string{}
	var items []event.PushItem
	done := map[string]bool{}
	for i, ev := range evs {
		c := logged[i]
		if done[ev.MsgID] {
			continue // the same change earlier in this batch
		}
		done[ev.MsgID] = true
		got, err := s.Store.MessagesAt(ctx, ev.ConversationID, []int64{c.Seq})
		if err != nil {
			return fmt.Errorf("reading message %s: %w", c.MsgID, err)
		}
		if got[0] == nil || got[0].MsgID != c.MsgID {
			s.Log.Warn("change of a message that is not stored; skipped", "change", ev.MsgID, "msgId", c.MsgID, "conversation", ev.ConversationID)
			continue
		}
		m := *got[0]
		rcpt := []string{c.By}
		if c.Kind == frame.KindHide {
			newest, err := s.Store.Hide(ctx, c.By, ev.ConversationID, c.Seq)
			if err != nil {
				return err
			}
			// The user's list must stop showing it as the last message.
			if s.Lists != nil {
				if err := s.Lists.Hid(ctx, c.By, ev.ConversationID, newest); err != nil {
					return fmt.Errorf("updating the list of %s: %w", c.By, err)
				}
			}
		} else {
			if m, err = s.apply(ctx, m, ev, c); err != nil {
				return err
			}
			if rcpt, err = s.recipients(ctx, ev.ChatType, ev.SendID, ev.RecvID, members); err != nil {
				return err
			}
		}
		shown := []domain.Message{m}
		if err := quote.Fill(ctx, s.Store, shown); err != nil {
			return err
		}
		data, err := json.Marshal(c.Changed(&shown[0]))
		if err != nil {
			return fmt.Errorf("encoding change %s: %w", ev.MsgID, err)
		}
		items = append(items, event.PushItem{Users: rcpt, Frame: frame.Frame{
			FrameType: frame.Data, Method: frame.MethodChanged, FormID: c.By, Data: data,
		}})
	}
	if err := push.Fanout(ctx, s.Routes, s.Push, items); err != nil {
		s.Log.Warn("push of changes failed; members will sync", "err", err, "changes", len(items))
	}
	return nil
}

// apply makes change c (record ev) to m in the store, and in the lists when
// m may be a conversation's last message, and returns m as it is now.
func (s *Service) apply(ctx context.Context, m domain.Message, ev event.Chat, c domain.Change) (domain.Message, error) {
	next, changed := m.Apply(domain.Edit{Kind: c.Kind, By: c.By, Time: ev.SendTime, Content: ev.Change.Content,
		Emoji: ev.Change.Emoji, Remove: ev.Change.Remove}, c.Version)
	if !changed {
		return m, nil
	}
	if c.Kind == frame.KindRecall && m.Msg.MType != frame.TextMsg {
		if err := s.removeFile(ctx, m); err != nil {
			return m, err
		}
	}
	if err := s.Store.Revise(ctx, next); err != nil {
		return m, err
	}
	if s.Lists != nil && c.Kind != frame.KindReact {
		if err := s.Lists.Revise(ctx, next); err != nil {
			return m, fmt.Errorf("revising conversation lists: %w", err)
		}
	}
	return next, nil
}

// removeFile deletes the bytes of a recalled image or file message before
// its content goes from the store: a retry after a failure deletes again
// (nothing to delete), while a recall stored before its file was deleted
// would leave the file without anything naming it.
func (s *Service) removeFile(ctx context.Context, m domain.Message) error {
	var f frame.File
	if err := json.Unmarshal([]byte(m.Msg.Content), &f); err != nil || f.Key == "" {
		return nil // not a file's content: nothing stored to delete
	}
	if s.RemoveFile == nil {
		return fmt.Errorf("recalling %s: no file store to delete %s from", m.MsgID, f.Key)
	}
	if err := s.RemoveFile(ctx, f.Key); err != nil {
		return fmt.Errorf("recalling %s: %w", m.MsgID, err)
	}
	return nil
}
