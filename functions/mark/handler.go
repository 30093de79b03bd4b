// Function mark accepts conversation.markChat and conversation.markDelivered
// frames from the gateway and publishes them to msg-read-transfer, keyed by
// conversation.
package function

import (
	"context"
	"time"

	handler "github.com/openfaas/templates-sdk/go-http"

	"easychat/pkg/call"
	"easychat/pkg/deps"
	"easychat/pkg/frame"
	"easychat/pkg/receipt"
	"easychat/pkg/sign"
)

// Handle accepts one markChat or markDelivered.
var Handle = call.Action("mark", func(ctx context.Context, caller sign.Claim, req handler.Request) (any, error) {
	st, err := deps.Store()
	if err != nil {
		return nil, err
	}
	pub, err := deps.Producer()
	if err != nil {
		return nil, err
	}
	a := receipt.Acceptor{Pub: pub, Groups: st, Now: time.Now}
	if req.Header.Get(frame.HeaderMethod) == frame.MethodMarkDelivered {
		return a.AcceptDelivered(ctx, caller.User, req.Body)
	}
	return a.Accept(ctx, caller.User, req.Body)
})
