// Function file grants uploads of images and files to a conversation's
// members and links to download them, and deletes uploads no message used.
// The bytes go between clients and the object store through the gateway.
package function

import (
	"context"

	handler "github.com/openfaas/templates-sdk/go-http"

	"easychat/pkg/call"
	"easychat/pkg/deps"
	"easychat/pkg/sign"
)

// Handle runs one file action for the signed-in user.
var Handle = call.Action("file", func(ctx context.Context, caller sign.Claim, req handler.Request) (any, error) {
	f, err := deps.Files()
	if err != nil {
		return nil, err
	}
	return f.Handle(ctx, caller.User, req.Body)
})
