package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/mongo"
	"go.mongodb.org/mongo-driver/mongo/options"

	"easychat/pkg/domain"
	"easychat/pkg/event"
	"easychat/pkg/frame"
)

// A conversation's changes (recalls, edits, reactions, hides) are a second
// log beside its messages, "<conversation>#c", stored by Append as messages
// are: exactly once each, numbered 1, 2, 3 … in the order they came, with
// claims and sealed pages, so a client syncs the changes after the number
// it knows the way it syncs messages. An entry names the message and the
// kind of change, never content: the message itself is changed in place
// (Revise), so a recall leaves no copy of what it removed.

// Hidden holds what each user deleted for themselves, per conversation
// ("<user>#<conversation>": the seqs).
const Hidden = "hidden"

// MaxHidden bounds the messages one user hides in one conversation.
const MaxHidden = 10_000

func changeLogID(conv string) string { return conv + "#c" }

// changeEntry is a change log entry as its "message" content carries it.
type changeEntry struct {
	Kind     string `json:"k"`
	MsgID    string `json:"m"`
	Seq      int64  `json:"q"`
	ChatType int    `json:"t"`
}

// AppendChanges stores change records (event.Chat with Change set) in their
// conversations' change logs, exactly once each, and returns them as
// entries numbered in their logs (a redelivered one with the number it got).
func (s *Store) AppendChanges(ctx context.Context, evs []event.Chat) ([]domain.Change, error) {
	logEvs := make([]event.Chat, len(evs))
	for i, ev := range evs {
		b, err := json.Marshal(changeEntry{Kind: ev.Change.Kind, MsgID: ev.Change.MsgID, Seq: ev.Change.Seq, ChatType: ev.ChatType})
		if err != nil {
			return nil, fmt.Errorf("encoding change %s: %w", ev.MsgID, err)
		}
		only := ""
		if ev.Change.Kind == frame.KindHide {
			only = ev.SendID
		}
		logEvs[i] = event.Chat{MsgID: ev.MsgID, ConversationID: changeLogID(ev.ConversationID), SendID: ev.SendID,
			RecvID: only, SendTime: ev.SendTime, ClientFrameID: ev.ClientFrameID, Msg: frame.Msg{Content: string(b)}}
	}
	saved, err := s.SaveChats(ctx, logEvs)
	if err != nil {
		return nil, fmt.Errorf("logging %d changes: %w", len(evs), err)
	}
	out := make([]domain.Change, len(saved))
	for i, m := range saved {
		c, err := changeOf(m.Message)
		if err != nil {
			return nil, err
		}
		out[i] = c
	}
	return out, nil
}

func changeOf(m domain.Message) (domain.Change, error) {
	var e changeEntry
	if err := json.Unmarshal([]byte(m.Msg.Content), &e); err != nil {
		return domain.Change{}, fmt.Errorf("decoding change %s: %w", m.MsgID, err)
	}
	conv := m.ConversationID[:len(m.ConversationID)-len("#c")]
	return domain.Change{Version: m.Seq, ConversationID: conv, ChatType: e.ChatType, Kind: e.Kind, MsgID: e.MsgID,
		Seq: e.Seq, By: m.SendID, Only: m.RecvID, Time: m.SendTime}, nil
}

// Changes returns up to limit entries of conv's change log after version,
// oldest first.
func (s *Store) Changes(ctx context.Context, conv string, after, limit int64) ([]domain.Change, error) {
	ms, err := s.Messages(ctx, changeLogID(conv), after, limit)
	if err != nil {
		return nil, err
	}
	out := make([]domain.Change, len(ms))
	for i, m := range ms {
		if out[i], err = changeOf(m); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// ChangeVersion returns the number of conv's newest change (0: none).
func (s *Store) ChangeVersion(ctx context.Context, conv string) (int64, error) {
	return s.topSeq(ctx, changeLogID(conv))
}

// Message returns the stored message msgID as it is now; ErrNotFound if
// there is none (a change's id is no message).
func (s *Store) Message(ctx context.Context, msgID string) (domain.Message, error) {
	l, err := findByID[logDoc](ctx, s.db.Collection(ChatLog), msgID, "message")
	if err != nil {
		return domain.Message{}, err
	}
	got, err := s.claimsOf(ctx, l.ConversationID, []int64{l.Seq})
	if err != nil {
		return domain.Message{}, err
	}
	if got[0] == nil {
		return domain.Message{}, fmt.Errorf("message %s: %w", msgID, ErrNotFound)
	}
	return *got[0], nil
}

// MessagesAt returns the messages of conv at seqs as they are now (nil for
// a seq without one), from their claims.
func (s *Store) MessagesAt(ctx context.Context, conv string, seqs []int64) ([]*domain.Message, error) {
	return s.claimsOf(ctx, conv, seqs)
}

// Revise replaces a stored message by m (the same message, changed): its
// claim, its sealed page, and the conversation's last message if it is m.
//
// A page not sealed yet may be sealed later from copies older than m (a
// transfer replica seals from the messages it stored last). So Revise,
// after the claim, puts a placeholder where the page goes: the sealer's
// insert then fails as a duplicate, and it seals the page from the claims
// instead (sealPages). Whichever comes first, the page ends with m, and the
// sealer needs no read to know.
func (s *Store) Revise(ctx context.Context, m domain.Message) error {
	conv := m.ConversationID
	s.claimsMu.Lock()
	_, err := s.claimsDB.Collection(SeqClaim).UpdateOne(ctx, bson.D{{Key: "_id", Value: claimID(conv, m.Seq)}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "m", Value: (*compact)(&m)}}}})
	s.claimsMu.Unlock()
	if err != nil {
		return fmt.Errorf("revising %s: %w", m.MsgID, err)
	}
	s.recent.revise(m)
	if err := s.revisePage(ctx, m); err != nil {
		return err
	}
	// The conversation's last message, if m is it; the hint of a later one
	// has moved on and does not match.
	s.writeMu.Lock()
	_, err = s.db.Collection(Conversation).UpdateOne(ctx,
		bson.D{{Key: "_id", Value: conv}, {Key: "lastMsg.seq", Value: m.Seq}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "lastMsg", Value: m}}}})
	s.writeMu.Unlock()
	if err != nil {
		return fmt.Errorf("revising the last message of %s: %w", conv, err)
	}
	return nil
}

// revisePage puts m into its sealed page, or a placeholder where the page
// goes if it is not sealed.
func (s *Store) revisePage(ctx context.Context, m domain.Message) error {
	pages := s.claimsDB.Collection(SeqPage)
	id := pageID(m.ConversationID, pageOf(m.Seq))
	for range 2 {
		var d pageDoc
		err := pages.FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Decode(&d)
		if errors.Is(err, mongo.ErrNoDocuments) {
			s.claimsMu.Lock()
			_, err = pages.InsertOne(ctx, pageDoc{ID: id, Msgs: []compact{}})
			s.claimsMu.Unlock()
			if isDup(err) {
				continue // sealed meanwhile: revise it
			}
			if err != nil {
				return fmt.Errorf("marking page %s revised: %w", id, err)
			}
			return nil
		}
		if err != nil {
			return fmt.Errorf("reading page %s: %w", id, err)
		}
		if len(d.Msgs) != PageSize {
			return nil // a placeholder: the sealer reads the claims
		}
		d.Msgs[(m.Seq-1)%PageSize] = compact(m)
		s.claimsMu.Lock()
		_, err = pages.ReplaceOne(ctx, bson.D{{Key: "_id", Value: id}}, d)
		s.claimsMu.Unlock()
		if err != nil {
			return fmt.Errorf("revising page %s: %w", id, err)
		}
		return nil
	}
	return fmt.Errorf("revising page %s: contended", id)
}

// resealFromClaims seals page k of conv, found as a placeholder where it
// was to be inserted, from the claims; it stays a placeholder (readers use
// the claims) while a claim is missing.
func (s *Store) resealFromClaims(ctx context.Context, conv string, k int64) error {
	id := pageID(conv, k)
	var d pageDoc
	err := s.claimsDB.Collection(SeqPage).FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Decode(&d)
	if err != nil {
		return fmt.Errorf("reading page %s: %w", id, err)
	}
	if len(d.Msgs) == PageSize {
		return nil // sealed already
	}
	seqs := make([]int64, PageSize)
	for i := range seqs {
		seqs[i] = k*PageSize + int64(i) + 1
	}
	got, err := s.claimsOf(ctx, conv, seqs)
	if err != nil {
		return err
	}
	d.Msgs = make([]compact, PageSize)
	for i, m := range got {
		if m == nil {
			return nil
		}
		d.Msgs[i] = compact(*m)
	}
	s.claimsMu.Lock()
	_, err = s.claimsDB.Collection(SeqPage).ReplaceOne(ctx, bson.D{{Key: "_id", Value: id}}, d)
	s.claimsMu.Unlock()
	if err != nil {
		return fmt.Errorf("sealing page %s from its claims: %w", id, err)
	}
	return nil
}

// hiddenDoc is what a user deleted for themselves in a conversation.
type hiddenDoc struct {
	ID   string  `bson:"_id"`
	Seqs []int64 `bson:"seqs"`
}

// Hide records that user deleted seq of conv for themselves (unless they
// hide MaxHidden messages there already) and returns the newest seq they
// have hidden there. A conversation's hides are applied one at a time (its
// records share a partition), so that is exact.
func (s *Store) Hide(ctx context.Context, user, conv string, seq int64) (int64, error) {
	id := readID(user, conv)
	h, err := findByID[hiddenDoc](ctx, s.db.Collection(Hidden), id, "hidden messages")
	if err != nil && !errors.Is(err, ErrNotFound) {
		return 0, err
	}
	newest := slices.Max(append(h.Seqs, 0))
	if len(h.Seqs) >= MaxHidden || slices.Contains(h.Seqs, seq) {
		return newest, nil
	}
	_, err = s.db.Collection(Hidden).UpdateOne(ctx, bson.D{{Key: "_id", Value: id}},
		bson.D{{Key: "$addToSet", Value: bson.D{{Key: "seqs", Value: seq}}}}, options.Update().SetUpsert(true))
	if err != nil {
		return 0, fmt.Errorf("hiding %s#%d for %s: %w", conv, seq, user, err)
	}
	return max(newest, seq), nil
}

// NewestHidden returns, for each of convs, the newest seq user deleted for
// themselves there (0: none): a point lookup each, for the lists.
func (s *Store) NewestHidden(ctx context.Context, user string, convs []string) (map[string]int64, error) {
	newest := make([]int64, len(convs))
	err := parallel(len(convs), func(k int) error {
		h, err := findByID[hiddenDoc](ctx, s.db.Collection(Hidden), readID(user, convs[k]), "hidden messages")
		if errors.Is(err, ErrNotFound) {
			return nil
		}
		newest[k] = slices.Max(append(h.Seqs, 0))
		return err
	})
	if err != nil {
		return nil, err
	}
	out := make(map[string]int64, len(convs))
	for k, c := range convs {
		out[c] = newest[k]
	}
	return out, nil
}

// HiddenOf returns the seqs of conv that user deleted for themselves.
func (s *Store) HiddenOf(ctx context.Context, user, conv string) (map[int64]bool, error) {
	h, err := findByID[hiddenDoc](ctx, s.db.Collection(Hidden), readID(user, conv), "hidden messages")
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	out := make(map[int64]bool, len(h.Seqs))
	for _, q := range h.Seqs {
		out[q] = true
	}
	return out, nil
}

// pageKey splits a page's id into its conversation and number.
func pageKey(id string) (string, int64) {
	i := strings.LastIndex(id, "#p")
	k, _ := strconv.ParseInt(id[i+2:], 10, 64)
	return id[:i], k
}
