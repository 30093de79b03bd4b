// Function user registers users and logs them in (issuing the JWT the
// gateway accepts). register and login are anonymous; me needs a user.
package function

import (
	"context"

	handler "github.com/openfaas/templates-sdk/go-http"

	"easychat/pkg/account"
	"easychat/pkg/call"
	"easychat/pkg/deps"
)

var tokens = deps.Tokens()

// Handle runs one account action.
var Handle = call.Action("user", func(ctx context.Context, user string, req handler.Request) (any, error) {
	st, err := deps.Store()
	if err != nil {
		return nil, err
	}
	s := account.Service{Store: st, Tokens: tokens}
	return s.Handle(ctx, user, req.Body)
})
