// Function transfer is triggered by the Kafka connector for records on
// msg-chat-transfer (one record, or a JSON array when the connector batches).
// It stores, sequences and pushes them; a non-2xx answer makes the connector
// retry, so storing is idempotent on msgId, and a record that can never be
// parsed is answered 400 so the connector dead-letters it at once.
package function

import (
	"context"

	handler "github.com/openfaas/templates-sdk/go-http"

	"easychat/pkg/call"
	"easychat/pkg/deps"
	"easychat/pkg/sign"
	"easychat/pkg/transfer"
)

// Handle processes one invocation from the connector.
var Handle = call.Component("transfer", func(ctx context.Context, _ sign.Claim, req handler.Request) (any, error) {
	evs, err := transfer.Decode(req.Body) // refused as invalid: the connector dead-letters it at once
	if err != nil {
		return nil, err
	}
	st, err := deps.Store()
	if err != nil {
		return nil, err
	}
	routes := deps.Routes()
	s := transfer.Service{Store: st, Lists: deps.ListCache(), Routes: routes, Push: deps.Pusher(), Log: deps.Log(),
		RemoveFile: removeFile}
	if err := s.Handle(ctx, evs); err != nil {
		return nil, err
	}
	return map[string]int{"stored": len(evs)}, nil
})

// removeFile deletes a recalled file's bytes (or has the sweeper do it
// later); the file store is reached only then.
func removeFile(ctx context.Context, key string) error {
	fs, err := deps.Files()
	if err != nil {
		return err
	}
	return fs.Recall(ctx, key)
}
