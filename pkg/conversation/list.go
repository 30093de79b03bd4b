package conversation

import (
	"context"
	"sort"

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
	// Summaries and positions are read at once: neither needs the other.
	pos := map[domain.PositionKey]domain.Position{}
	posErr := make(chan error, 1)
	if withPositions {
		go func() {
			var err error
			pos, err = s.positions(ctx, keys)
			posErr <- err
		}()
	} else {
		posErr <- nil
	}
	sums, err := s.summaries(ctx, convs)
	if perr := <-posErr; err == nil {
		err = perr
	}
	if err != nil {
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
	sort.SliceStable(out, func(i, j int) bool { return out[i].UpdatedAt > out[j].UpdatedAt })
	return out, nil
}

// summaries returns the summaries of convs: the cache's, then the store's
// for the rest, which are cached.
func (s *Service) summaries(ctx context.Context, convs []string) (map[string]domain.Summary, error) {
	have := map[string]domain.Summary{}
	if s.Cache != nil {
		var err error
		if have, err = s.Cache.Summaries(ctx, convs); err != nil {
			s.warn("reading cached summaries; reading the store", err)
			have = map[string]domain.Summary{}
		}
	}
	var missing []string
	for _, c := range convs {
		if _, ok := have[c]; !ok {
			missing = append(missing, c)
		}
	}
	if len(missing) == 0 {
		return have, nil
	}
	got, err := s.Store.Summaries(ctx, missing)
	if err != nil {
		return nil, err
	}
	if s.Cache != nil {
		if err := s.Cache.Fill(ctx, got); err != nil {
			s.warn("caching summaries", err)
		}
	}
	for c, sum := range got {
		have[c] = sum
	}
	return have, nil
}

// positions returns the positions named by keys: the cache's, then the
// store's for the rest, which are cached.
func (s *Service) positions(ctx context.Context, keys []domain.PositionKey) (map[domain.PositionKey]domain.Position, error) {
	have := map[domain.PositionKey]domain.Position{}
	if s.Cache != nil {
		var err error
		if have, err = s.Cache.Positions(ctx, keys); err != nil {
			s.warn("reading cached positions; reading the store", err)
			have = map[domain.PositionKey]domain.Position{}
		}
	}
	var missing []domain.PositionKey
	for _, k := range keys {
		if _, ok := have[k]; !ok {
			missing = append(missing, k)
		}
	}
	if len(missing) == 0 {
		return have, nil
	}
	got, err := s.Store.Positions(ctx, missing)
	if err != nil {
		return nil, err
	}
	if s.Cache != nil {
		if err := s.Cache.PutPositions(ctx, got); err != nil {
			s.warn("caching positions", err)
		}
	}
	for k, p := range got {
		have[k] = p
	}
	return have, nil
}

func (s *Service) warn(what string, err error) {
	if s.Log != nil {
		s.Log.Warn(what, "err", err)
	}
}
