// Function group creates groups and manages their members, and announces
// membership changes to the members' sockets.
package function

import (
	"context"

	handler "github.com/openfaas/templates-sdk/go-http"

	"easychat/pkg/call"
	"easychat/pkg/deps"
	"easychat/pkg/group"
	"easychat/pkg/sign"
)

// Handle runs one group action for the signed-in user.
var Handle = call.Action("group", func(ctx context.Context, caller sign.Claim, req handler.Request) (any, error) {
	st, err := deps.Store()
	if err != nil {
		return nil, err
	}
	lim := deps.Settings().Limits
	s := group.Service{Store: st, Routes: deps.Routes(), Push: deps.Pusher(), Log: deps.Log(),
		Limiter: deps.Limiter(), CreateLimit: lim.GroupCreate, AddLimit: lim.GroupAdd, MaxMembers: lim.GroupMaxMembers}
	return s.Handle(ctx, caller.User, req.Body)
})
