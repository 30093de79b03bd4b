// Function conversation serves the conversation list with unread counts,
// history pages, and conversation.sync frames from the gateway.
package function

import (
	"context"

	handler "github.com/openfaas/templates-sdk/go-http"

	"easychat/pkg/call"
	"easychat/pkg/conversation"
	"easychat/pkg/deps"
	"easychat/pkg/frame"
	"easychat/pkg/sign"
)

// Handle runs one conversation action for the signed-in user.
var Handle = call.Action("conversation", func(ctx context.Context, caller sign.Claim, req handler.Request) (any, error) {
	st, err := deps.Store()
	if err != nil {
		return nil, err
	}
	action := ""
	if req.Header.Get(frame.HeaderMethod) == frame.MethodSync {
		action = "sync" // a websocket frame's data carries no action
	}
	s := conversation.Service{Store: st, Cache: deps.ListCache(), Log: deps.Log()}
	return s.Handle(ctx, caller.User, action, req.Body)
})
