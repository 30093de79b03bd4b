// Package conversation serves what a client reads: its conversation list with
// unread counts, history by seq (newest first, paged) and sync (everything
// after the seqs a client knows, oldest first, paged).
package conversation

import (
	"context"
	"encoding/json"
	"log/slog"

	"easychat/pkg/domain"
	"easychat/pkg/frame"
	"easychat/pkg/ident"
	"easychat/pkg/reject"
)

// Store is the persistence conversations need.
type Store interface {
	ListOf(ctx context.Context, user string) ([]domain.ListEntry, error)
	Summaries(ctx context.Context, convs []string) (map[string]domain.Summary, error)
	Positions(ctx context.Context, keys []domain.PositionKey) (map[domain.PositionKey]domain.Position, error)
	History(ctx context.Context, conv string, before, limit int64) ([]domain.Message, error)
	Messages(ctx context.Context, conv string, after, limit int64) ([]domain.Message, error)
	IsMember(ctx context.Context, group, user string) (bool, error)
	// Changes of messages (store/change.go).
	MessagesAt(ctx context.Context, conv string, seqs []int64) ([]*domain.Message, error)
	HiddenOf(ctx context.Context, user, conv string) (map[int64]bool, error)
	NewestHidden(ctx context.Context, user string, convs []string) (map[string]int64, error)
	Changes(ctx context.Context, conv string, after, limit int64) ([]domain.Change, error)
	ChangeVersion(ctx context.Context, conv string) (int64, error)
}

// Service answers the conversation function's actions. Cache, when set,
// holds what lists show (see list.go); Log, when set, hears of its failures.
type Service struct {
	Store Store
	Cache Cache
	Log   *slog.Logger
}

// Request is the body of a call (the data of a conversation.sync frame has
// no action; the function passes "sync").
type Request struct {
	Action         string           `json:"action"` // list | history | sync
	ConversationID string           `json:"conversationId"`
	Before         int64            `json:"before"`
	Limit          int64            `json:"limit"`
	Seqs           map[string]int64 `json:"seqs"` // sync: last seq known per conversation
	// Versions (sync): the last change number known per conversation; the
	// changes after it are returned. Without it, none are.
	Versions map[string]int64 `json:"versions"`
}

// Paging bounds.
const (
	DefaultLimit = 50
	MaxLimit     = 200
	// MaxSyncSeqs bounds the conversations one sync names.
	MaxSyncSeqs = 5000
)

// SyncResult is the answer to sync: messages in push-frame shape, grouped by
// conversation and in seq order within each; More means call again with the
// seqs advanced.
type SyncResult struct {
	Messages []frame.Push    `json:"messages"`
	Changes  []frame.Changed `json:"changes,omitempty"`
	More     bool            `json:"more"`
}

// Handle runs one action for the verified user caller.
func (s *Service) Handle(ctx context.Context, caller, action string, body []byte) (any, error) {
	if caller == "" {
		return nil, reject.Unauthorized("login required")
	}
	var req Request
	if len(body) > 0 {
		if err := json.Unmarshal(body, &req); err != nil {
			return nil, reject.Invalid("invalid request: %v", err)
		}
	}
	if action == "" {
		action = req.Action
	}
	if req.Limit <= 0 {
		req.Limit = DefaultLimit
	}
	if req.Before < 0 {
		return nil, reject.Invalid("before must not be negative")
	}
	if req.Limit > MaxLimit {
		req.Limit = MaxLimit
	}
	switch action {
	case "list":
		cs, err := s.list(ctx, caller, true)
		if err != nil {
			return nil, err
		}
		if cs == nil {
			cs = []domain.ConversationState{}
		}
		return map[string]any{"conversations": cs}, nil
	case "history":
		if err := s.access(ctx, caller, req.ConversationID); err != nil {
			return nil, err
		}
		// The version first: a change after it is synced even if the
		// messages read below have it already.
		version, err := s.Store.ChangeVersion(ctx, req.ConversationID)
		if err != nil {
			return nil, err
		}
		ms, err := s.Store.History(ctx, req.ConversationID, req.Before, req.Limit)
		if err != nil {
			return nil, err
		}
		out, err := s.shown(ctx, caller, req.ConversationID, ms)
		if err != nil {
			return nil, err
		}
		return map[string]any{"messages": out, "version": version}, nil
	case "sync":
		if len(req.Seqs) > MaxSyncSeqs {
			return nil, reject.Invalid("at most %d conversations in seqs", MaxSyncSeqs)
		}
		if len(req.Versions) > MaxSyncSeqs {
			return nil, reject.Invalid("at most %d conversations in versions", MaxSyncSeqs)
		}
		for field, m := range map[string]map[string]int64{"seqs": req.Seqs, "versions": req.Versions} {
			for conv, n := range m {
				if err := ident.Conversation(field, conv); err != nil {
					return nil, err
				}
				if n < 0 {
					return nil, reject.Invalid("%s: %s: must not be negative", field, conv)
				}
			}
		}
		return s.sync(ctx, caller, req)
	default:
		return nil, reject.Invalid("unknown action %q (list, history, sync)", action)
	}
}

func (s *Service) sync(ctx context.Context, caller string, req Request) (SyncResult, error) {
	cs, err := s.list(ctx, caller, false)
	if err != nil {
		return SyncResult{}, err
	}
	res := SyncResult{Messages: []frame.Push{}}
	left := req.Limit
	for _, c := range cs {
		known := req.Seqs[c.ConversationID]
		if c.Seq <= known {
			continue
		}
		if left == 0 {
			res.More = true
			break
		}
		ms, err := s.Store.Messages(ctx, c.ConversationID, known, left)
		if err != nil {
			return SyncResult{}, err
		}
		shown, err := s.shown(ctx, caller, c.ConversationID, ms)
		if err != nil {
			return SyncResult{}, err
		}
		res.Messages = append(res.Messages, shown...)
		left -= int64(len(ms))
		if int64(len(ms)) > 0 && ms[len(ms)-1].Seq < c.Seq && left == 0 {
			res.More = true
			break
		}
	}
	if len(req.Versions) == 0 || res.More {
		return res, nil
	}
	return res, s.syncChanges(ctx, caller, cs, req.Versions, left, &res)
}

// access checks that user takes part in conv.
func (s *Service) access(ctx context.Context, user, conv string) error {
	if conv == "" {
		return reject.Invalid("conversationId is required")
	}
	if err := ident.Conversation("conversationId", conv); err != nil {
		return err
	}
	return domain.TakesPart(ctx, s.Store, conv, user)
}
