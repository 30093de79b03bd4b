// Function chat accepts conversation.chat frames forwarded by the websocket
// gateway, and the frames that change a stored message (recall, edit, react,
// hide), which go to Kafka the same way. Only the gateway's signature vouches for the user; the answer
// ({msgId, conversationId}) is what the gateway acks to the client. The
// gateway sends the frames of many sockets as one batch when it is busy
// (header X-Easychat-Batch), and they are published in one Kafka write.
package function

import (
	"context"
	"time"

	handler "github.com/openfaas/templates-sdk/go-http"

	"easychat/pkg/batch"
	"easychat/pkg/call"
	"easychat/pkg/chat"
	"easychat/pkg/deps"
	"easychat/pkg/frame"
	"easychat/pkg/reject"
	"easychat/pkg/sign"
)

func service() (*chat.Service, error) {
	st, err := deps.Store()
	if err != nil {
		return nil, err
	}
	pub, err := deps.Producer()
	if err != nil {
		return nil, err
	}
	c := deps.Settings()
	return &chat.Service{Pub: pub, Groups: st, Messages: st, Now: time.Now,
		RecallWindow: c.RecallWindow, EditWindow: c.EditWindow, Wait: chat.DefaultWait, UseFile: useFile,
		Limiter: deps.Limiter(), ChangeLimit: c.Limits.Changes}, nil
}

// useFile checks an image or file message against its upload. The file
// store is reached only for such messages: without it, text still flows.
func useFile(ctx context.Context, msgID, user string, mType int, f frame.File) error {
	fs, err := deps.Files()
	if err == nil {
		err = fs.Use(ctx, msgID, user, mType, f)
	}
	if err != nil && !reject.Refusal(err) {
		deps.Log().Error("checking a file message", "key", f.Key, "err", err)
	}
	return err
}

var one = call.Action("chat", func(ctx context.Context, caller sign.Claim, req handler.Request) (any, error) {
	s, err := service()
	if err != nil {
		return nil, err
	}
	return s.Accept(ctx, batch.Item{User: caller.User, FrameID: req.Header.Get(frame.HeaderFrameID),
		Data: req.Body, Origin: req.Header.Get(frame.HeaderOrigin), Method: req.Header.Get(frame.HeaderMethod)})
})

var many = call.Batch("chat", func(ctx context.Context, items []batch.Item) ([]batch.Result, error) {
	s, err := service()
	if err != nil {
		return nil, err
	}
	return s.AcceptBatch(ctx, items)
})

// Handle answers one chat, or a batch of them.
func Handle(req handler.Request) (handler.Response, error) {
	if req.Header.Get(batch.Header) != "" {
		return many(req)
	}
	return one(req)
}
