package chat

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"easychat/pkg/batch"
	"easychat/pkg/domain"
	"easychat/pkg/event"
	"easychat/pkg/frame"
	"easychat/pkg/ident"
	"easychat/pkg/limit"
	"easychat/pkg/reject"
)

// Refusals of changes; their text reaches the client as is.
var (
	errNotFound     = reject.NotFound("message not found")
	errNotYours     = reject.Forbidden("not your message")
	errRecallWindow = reject.Forbidden("recall window has passed")
	errEditWindow   = reject.Forbidden("edit window has passed")
	errEditText     = reject.Invalid("only text messages can be edited")
	errRecalled     = reject.Conflict("message was recalled")
	errReactions    = reject.Conflict("too many reactions on this message")
)

// prepareChange validates a change of kind to a stored message and builds
// its record (on the chat topic, keyed by its conversation, so it follows
// the message) and its ack.
func (s *Service) prepareChange(ctx context.Context, groups Membership, it batch.Item, kind string, wait time.Duration) (frame.ChatAck, domain.Record, error) {
	var c frame.Change
	if err := json.Unmarshal(it.Data, &c); err != nil {
		return frame.ChatAck{}, domain.Record{}, reject.Invalid("invalid data: %v", err)
	}
	if err := c.Validate(kind); err != nil {
		return frame.ChatAck{}, domain.Record{}, reject.Invalid("%v", err)
	}
	user, conv := it.User, c.ConversationID
	recv, owner, err := s.partOf(ctx, groups, conv, user)
	if err != nil {
		return frame.ChatAck{}, domain.Record{}, err
	}
	m, err := s.find(ctx, conv, c.MsgID, wait)
	if errors.Is(err, reject.ErrNotFound) {
		return frame.ChatAck{}, domain.Record{}, errNotFound
	}
	if err != nil {
		return frame.ChatAck{}, domain.Record{}, err
	}
	now := s.Now()
	if err := s.may(kind, c, m, user, owner, now); err != nil {
		return frame.ChatAck{}, domain.Record{}, err
	}
	// Every change stays in its conversation's change log, is pushed to
	// every member and replayed by every device that syncs: toggling a
	// reaction in a loop would grow what all of them read.
	if err := limit.Check(ctx, s.Limiter, "changes:"+user, s.ChangeLimit, "changes of messages"); err != nil {
		return frame.ChatAck{}, domain.Record{}, err
	}
	id := event.MsgID(user, conv, it.FrameID, "change\x00"+kind+"\x00"+c.MsgID+"\x00"+c.Content+"\x00"+c.Emoji+"\x00"+strconv.FormatBool(c.Remove))
	if it.FrameID == "" {
		id = randomID()
	}
	ev := event.Chat{
		MsgID: id, ConversationID: conv, ChatType: m.ChatType, SendID: user, RecvID: recv,
		SendTime: now.UnixMilli(), ClientFrameID: it.FrameID,
		Change: &event.Change{Kind: kind, MsgID: m.MsgID, Seq: m.Seq, Content: c.Content, Emoji: c.Emoji, Remove: c.Remove},
	}
	if kind != frame.KindEdit {
		ev.Change.Content = ""
	}
	b, err := json.Marshal(ev)
	if err != nil {
		return frame.ChatAck{}, domain.Record{}, fmt.Errorf("encoding change: %w", err)
	}
	return frame.ChatAck{MsgID: m.MsgID, ConversationID: conv}, domain.Record{Topic: event.TopicChat, Key: conv, Value: b}, nil
}

// partOf checks that user takes part in conv and returns the recipient a
// record of user's names in it (the peer, or the group) and, for a group,
// whether user owns it.
func (s *Service) partOf(ctx context.Context, groups Membership, conv, user string) (recv string, owner bool, err error) {
	if peer, ok := frame.SinglePeer(conv, user); ok {
		return peer, false, nil
	}
	if _, _, single := ident.Peers(conv); single {
		return "", false, reject.Forbidden("not part of conversation %s", conv)
	}
	g, err := groups.Group(ctx, conv)
	if errors.Is(err, reject.ErrNotFound) {
		return "", false, reject.NotFound("no group %s", conv)
	}
	if err != nil {
		return "", false, fmt.Errorf("reading group %s: %w", conv, err)
	}
	if !g.Has(user) {
		return "", false, reject.Forbidden("not a member of group %s", conv)
	}
	return conv, g.Owner == user, nil
}

// may decides whether user may make change c of kind to m at now.
func (s *Service) may(kind string, c frame.Change, m domain.Message, user string, owner bool, now time.Time) error {
	age := now.Sub(time.UnixMilli(m.SendTime))
	switch kind {
	case frame.KindRecall:
		switch {
		case m.Msg.Recalled:
			return errRecalled
		case owner:
		case m.SendID != user:
			return errNotYours
		case age > s.window(s.RecallWindow, DefaultRecallWindow):
			return errRecallWindow
		}
	case frame.KindEdit:
		switch {
		case m.SendID != user:
			return errNotYours
		case m.Msg.Recalled:
			return errRecalled
		case m.Msg.MType != frame.TextMsg:
			return errEditText
		case age > s.window(s.EditWindow, DefaultEditWindow):
			return errEditWindow
		}
	case frame.KindReact:
		if m.Msg.Recalled {
			return errRecalled
		}
		if _, ok := m.Apply(domain.Edit{Kind: kind, By: user, Emoji: c.Emoji, Remove: c.Remove}, m.Msg.Version+1); !ok && !c.Remove && !hasReacted(m, c.Emoji, user) {
			return errReactions
		}
	}
	return nil
}

func hasReacted(m domain.Message, emoji, user string) bool {
	for _, u := range m.Msg.Reactions[emoji] {
		if u == user {
			return true
		}
	}
	return false
}

func (s *Service) window(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

// find returns message msgID of conv, waiting up to wait for it to be
// stored; reject.ErrNotFound if it is not (or is another conversation's).
func (s *Service) find(ctx context.Context, conv, msgID string, wait time.Duration) (domain.Message, error) {
	deadline := time.Now().Add(wait)
	for {
		m, err := s.Messages.Message(ctx, msgID)
		if err == nil && m.ConversationID != conv {
			err = reject.ErrNotFound
		}
		if !errors.Is(err, reject.ErrNotFound) || time.Now().After(deadline) {
			return m, err
		}
		select {
		case <-ctx.Done():
			return m, err
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// checkMentions checks a group chat's mentions: members only, and @all
// from the owner only.
func (s *Service) checkMentions(ctx context.Context, groups Membership, c frame.Chat, user string) error {
	for _, u := range c.Msg.Mentions {
		ok, err := groups.IsMember(ctx, c.RecvID, u)
		if err != nil && !errors.Is(err, reject.ErrNotFound) {
			return fmt.Errorf("checking mention of %s in %s: %w", u, c.RecvID, err)
		}
		if !ok {
			return reject.Invalid("mentions: %s is not a member of %s", u, c.RecvID)
		}
	}
	if c.Msg.MentionAll {
		g, err := groups.Group(ctx, c.RecvID)
		if err != nil && !errors.Is(err, reject.ErrNotFound) {
			return fmt.Errorf("reading group %s: %w", c.RecvID, err)
		}
		if g.Owner != user {
			return reject.Forbidden("only the group's owner may mention all")
		}
	}
	return nil
}
