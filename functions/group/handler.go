// Function group creates groups and manages their members, and announces
// membership changes to the members' sockets.
package function

import (
	"context"

	handler "github.com/openfaas/templates-sdk/go-http"

	"easychat/pkg/call"
	"easychat/pkg/deps"
	"easychat/pkg/group"
)

// Handle runs one group action for the signed-in user.
var Handle = call.Action("group", func(ctx context.Context, user string, req handler.Request) (any, error) {
	st, err := deps.Store()
	if err != nil {
		return nil, err
	}
	s := group.Service{Store: st, Log: deps.Log()}
	// Without Redis the change is still made; members see it in their next list.
	if routes, err := deps.Routes(); err == nil {
		s.Routes, s.Push = routes, deps.Pusher()
	} else {
		deps.Log().Warn("no route registry: group changes are not announced", "err", err)
	}
	return s.Handle(ctx, user, req.Body)
})
