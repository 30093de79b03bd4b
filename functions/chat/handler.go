// Function chat accepts conversation.chat frames forwarded by the websocket
// gateway. Only the gateway's signature vouches for the user; the answer
// ({msgId, conversationId}) is what the gateway acks to the client.
package function

import (
	"context"
	"time"

	handler "github.com/openfaas/templates-sdk/go-http"

	"easychat/pkg/call"
	"easychat/pkg/chat"
	"easychat/pkg/deps"
)

// Handle answers one chat.
var Handle = call.Action("chat", func(ctx context.Context, user string, req handler.Request) (any, error) {
	st, err := deps.Store()
	if err != nil {
		return nil, err
	}
	pub, err := deps.Producer()
	if err != nil {
		return nil, err
	}
	s := chat.Service{Pub: pub, Groups: st, Now: time.Now}
	return s.Accept(ctx, user, req.Header.Get("X-Easychat-Frame-Id"), req.Body)
})
