package conversation

import (
	"cmp"
	"context"
	"sort"
	"sync"

	"easychat/pkg/domain"
	"easychat/pkg/frame"
)

// Cache holds what lists show, in front of the store (listcache.Redis);
// see package listcache. Summaries and Positions return what it holds.
type Cache interface {
	Summaries(ctx context.Context, convs []string) (map[string]domain.Summary, error)
	Fill(ctx context.Context, sums map[string]domain.Summary) error
	Positions(ctx context.Context, keys []domain.PositionKey) (map[domain.PositionKey]domain.Position, error)
	PutPositions(ctx context.Context, pos map[domain.PositionKey]domain.Position) error
	NewestHidden(ctx context.Context, user string, convs []string) (map[string]int64, error)
	PutNewestHidden(ctx context.Context, user string, newest map[string]int64) error
}

// list returns user's conversations, most recently active first: every
// single chat with a message and every group the user is in, with the read
// positions (withPositions) or only the seqs (sync). Its cost is what it
// returns: the user's list (read by _id), then each conversation's summary
// and the positions it shows, from the cache, the rest from the store by
// _id (and cached).
func (s *Service) list(ctx context.Context, user string, withPositions bool) ([]domain.ConversationState, error) {
	entries, err := s.Store.ListOf(ctx, user)
	if err != nil {
		return nil, err
	}
	convs := make([]string, len(entries))
	var keys []domain.PositionKey
	for i, e := range entries {
		convs[i] = e.ConversationID
		keys = append(keys, domain.PositionKey{User: user, Conversation: e.ConversationID})
		if peer, ok := frame.SinglePeer(e.ConversationID, user); ok && e.ChatType == frame.SingleChat {
			keys = append(keys, domain.PositionKey{User: peer, Conversation: e.ConversationID})
		}
	}
	// Summaries, positions and what the user hid are read at once: none
	// needs another.
	var (
		wg             sync.WaitGroup
		pos            = map[domain.PositionKey]domain.Position{}
		hidden         map[string]int64
		posErr, hidErr error
	)
	if withPositions {
		wg.Go(func() { pos, posErr = s.positions(ctx, keys) })
		wg.Go(func() { hidden, hidErr = s.newestHidden(ctx, user, convs) })
	}
	sums, err := s.summaries(ctx, convs)
	wg.Wait()
	if err := cmp.Or(err, posErr, hidErr); err != nil {
		return nil, err
	}
	out := make([]domain.ConversationState, 0, len(entries))
	for _, e := range entries {
		sum := sums[e.ConversationID]
		st := domain.ConversationState{ConversationID: e.ConversationID, ChatType: e.ChatType, Seq: sum.Seq,
			LastMsg: sum.LastMsg, UpdatedAt: sum.UpdatedAt}
		if e.ChatType == frame.SingleChat {
			peer, ok := frame.SinglePeer(e.ConversationID, user)
			if !ok || sum.Seq == 0 {
				continue // listed by its first message, which is not stored (yet)
			}
			st.PeerID = peer
			p := pos[domain.PositionKey{User: peer, Conversation: e.ConversationID}]
			// Having sent a message, the peer has read everything before it.
			st.PeerReadSeq = max(p.Read, sum.Sent[peer])
			st.PeerDeliveredSeq = max(p.Delivered, st.PeerReadSeq)
		} else {
			st.GroupName = e.Name
			if st.UpdatedAt == 0 {
				st.UpdatedAt = e.At
			}
		}
		// Having sent a message, the user has read everything before it.
		st.ReadSeq = max(pos[domain.PositionKey{User: user, Conversation: e.ConversationID}].Read, sum.Sent[user])
		st.Unread = max(st.Seq-st.ReadSeq, 0)
		st.Mentioned = max(sum.Mentioned[user], sum.Mentioned[domain.AllMembers]) > st.ReadSeq
		out = append(out, st)
	}
	if withPositions {
		if err := s.unhideLast(ctx, user, out, hidden); err != nil {
			return nil, err
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].UpdatedAt > out[j].UpdatedAt })
	return out, nil
}

// unhideLast shows, where a conversation's last message is one user deleted
// for themselves, the newest one they did not delete instead (none, if they
// deleted every one). Summaries are the members' in common; what one of
// them hid is theirs. newest is the newest seq user hid per conversation,
// known like a position (cache, then store by _id); only a conversation
// whose last message it is costs more: its hidden set and one message.
func (s *Service) unhideLast(ctx context.Context, user string, states []domain.ConversationState, newest map[string]int64) error {
	for i := range states {
		st := &states[i]
		if st.LastMsg == nil || newest[st.ConversationID] < st.LastMsg.Seq {
			continue
		}
		hidden, err := s.Store.HiddenOf(ctx, user, st.ConversationID)
		if err != nil {
			return err
		}
		if !hidden[st.LastMsg.Seq] {
			continue
		}
		seq := st.LastMsg.Seq - 1
		for seq > 0 && hidden[seq] {
			seq-- // at most store.MaxHidden steps
		}
		st.LastMsg = nil
		if seq == 0 {
			continue
		}
		got, err := s.Store.MessagesAt(ctx, st.ConversationID, []int64{seq})
		if err != nil {
			return err
		}
		st.LastMsg = got[0]
	}
	return nil
}

// newestHidden returns the newest seq user hid in each of convs (0: none).
func (s *Service) newestHidden(ctx context.Context, user string, convs []string) (map[string]int64, error) {
	var c cached[string, int64]
	if s.Cache != nil {
		c.read = func(ks []string) (map[string]int64, error) { return s.Cache.NewestHidden(ctx, user, ks) }
		c.put = func(m map[string]int64) error { return s.Cache.PutNewestHidden(ctx, user, m) }
	}
	c.load = func(ks []string) (map[string]int64, error) { return s.Store.NewestHidden(ctx, user, ks) }
	return c.get(s, "hidden seqs", convs)
}

// summaries returns the summaries of convs.
func (s *Service) summaries(ctx context.Context, convs []string) (map[string]domain.Summary, error) {
	var c cached[string, domain.Summary]
	if s.Cache != nil {
		c.read = func(ks []string) (map[string]domain.Summary, error) { return s.Cache.Summaries(ctx, ks) }
		c.put = func(m map[string]domain.Summary) error { return s.Cache.Fill(ctx, m) }
	}
	c.load = func(ks []string) (map[string]domain.Summary, error) { return s.Store.Summaries(ctx, ks) }
	return c.get(s, "summaries", convs)
}

// positions returns the positions named by keys.
func (s *Service) positions(ctx context.Context, keys []domain.PositionKey) (map[domain.PositionKey]domain.Position, error) {
	var c cached[domain.PositionKey, domain.Position]
	if s.Cache != nil {
		c.read = func(ks []domain.PositionKey) (map[domain.PositionKey]domain.Position, error) {
			return s.Cache.Positions(ctx, ks)
		}
		c.put = func(m map[domain.PositionKey]domain.Position) error { return s.Cache.PutPositions(ctx, m) }
	}
	c.load = func(ks []domain.PositionKey) (map[domain.PositionKey]domain.Position, error) {
		return s.Store.Positions(ctx, ks)
	}
	return c.get(s, "positions", keys)
}

// cached reads values through the list cache: what the cache holds (read),
// then the store's for the rest (load), which are cached (put). Without a
// cache read and put are nil; a cache that fails costs speed, not the answer.
type cached[K comparable, V any] struct {
	read, load func([]K) (map[K]V, error)
	put        func(map[K]V) error
}

func (c cached[K, V]) get(s *Service, what string, keys []K) (map[K]V, error) {
	have := map[K]V{}
	if c.read != nil {
		var err error
		if have, err = c.read(keys); err != nil {
			s.warn("reading cached "+what+"; reading the store", err)
			have = map[K]V{}
		}
	}
	var missing []K
	for _, k := range keys {
		if _, ok := have[k]; !ok {
			missing = append(missing, k)
		}
	}
	if len(missing) == 0 {
		return have, nil
	}
	got, err := c.load(missing)
	if err != nil {
		return nil, err
	}
	if c.put != nil {
		if err := c.put(got); err != nil {
			s.warn("caching "+what, err)
		}
	}
	for k, v := range got {
		have[k] = v
	}
	return have, nil
}

func (s *Service) warn(what string, err error) {
	if s.Log != nil {
		s.Log.Warn(what, "err", err)
	}
}
