package domain

import (
	"context"
	"errors"
	"fmt"

	"easychat/pkg/frame"
	"easychat/pkg/ident"
	"easychat/pkg/reject"
)

// Members answers whether a user is a member of a group (reject.ErrNotFound
// for a group that does not exist).
type Members interface {
	IsMember(ctx context.Context, group, user string) (bool, error)
}

// TakesPart checks that user takes part in conversation conv, a valid
// conversation id: one of a single conversation's two, or a member of the
// group.
func TakesPart(ctx context.Context, m Members, conv, user string) error {
	if !ident.IsGroup(conv) {
		if _, ok := frame.SinglePeer(conv, user); ok {
			return nil
		}
		return reject.Forbidden("not part of conversation %s", conv)
	}
	ok, err := m.IsMember(ctx, conv, user)
	if errors.Is(err, reject.ErrNotFound) {
		return reject.NotFound("no group %s", conv)
	}
	if err != nil {
		return fmt.Errorf("checking membership of %s: %w", conv, err)
	}
	if !ok {
		return reject.Forbidden("not a member of group %s", conv)
	}
	return nil
}
