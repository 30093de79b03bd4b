// Function group creates groups and manages their members.
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
	s := group.Service{Store: st}
	return s.Handle(ctx, user, req.Body)
})
