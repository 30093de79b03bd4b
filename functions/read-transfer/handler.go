// Function read-transfer is triggered by the connector for records on
// msg-read-transfer: it records read and delivered positions and pushes
// receipts to the senders. Receipts of one reader in one conversation within
// a batch merge.
package function

import (
	"context"

	handler "github.com/openfaas/templates-sdk/go-http"

	"easychat/pkg/call"
	"easychat/pkg/deps"
	"easychat/pkg/receipt"
	"easychat/pkg/sign"
)

// Handle processes one invocation from the connector.
var Handle = call.Component("read-transfer", func(ctx context.Context, _ sign.Claim, req handler.Request) (any, error) {
	evs, err := receipt.Decode(req.Body)
	if err != nil {
		return nil, err
	}
	st, err := deps.Store()
	if err != nil {
		return nil, err
	}
	routes := deps.Routes()
	t := receipt.Transfer{Store: st, Lists: deps.ListCache(), Routes: routes, Push: deps.Pusher(), Log: deps.Log()}
	if err := t.Handle(ctx, evs); err != nil {
		return nil, err
	}
	return map[string]int{"receipts": len(evs)}, nil
})
