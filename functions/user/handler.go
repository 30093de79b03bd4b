// Function user registers accounts, logs users in (issuing the JWTs the
// gateway accepts), and answers profile lookups.
package function

import (
	"context"

	handler "github.com/openfaas/templates-sdk/go-http"

	"easychat/pkg/account"
	"easychat/pkg/call"
	"easychat/pkg/deps"
	"easychat/pkg/frame"
	"easychat/pkg/sign"
)

var tokens = deps.Tokens() // at start: without the jwt-secret the function does not run

// Handle runs one account action; register and login may be anonymous.
var Handle = call.Action("user", func(ctx context.Context, caller sign.Claim, req handler.Request) (any, error) {
	st, err := deps.Store()
	if err != nil {
		return nil, err
	}
	lim := deps.Settings().Limits
	s := account.Service{Store: st, Tokens: tokens, Limiter: deps.Limiter(),
		LoginPerUser: lim.LoginPerUser, LoginPerAddr: lim.LoginPerAddr, RegisterPerAddr: lim.RegisterPerAddr}
	// The client address is vouched for by the gateway's signature.
	return s.Handle(ctx, caller.User, req.Header.Get(frame.HeaderClient), req.Body)
})
