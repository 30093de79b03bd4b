// Package batch is the wire format of a batched function call: the gateway
// sends the chat frames of many sockets to the chat function in one signed
// request, and the function answers each one separately. A batch is signed as
// a component call (no user header); the user of each item is inside the
// signed body, so it is as trustworthy as a single call's user header.
package batch

import "encoding/json"

// Header marks a request whose body is a JSON array of Item and whose answer
// is a JSON array of Result, one per item, in order.
const Header = "X-Easychat-Batch"

// Item is one frame of a batch.
type Item struct {
	User    string          `json:"user"`
	FrameID string          `json:"frameId,omitempty"`
	Data    json.RawMessage `json:"data"`
	// Origin names the socket the frame came from (event.Chat.Origin).
	Origin string `json:"origin,omitempty"`
	// Method is the frame's method when it is not the function's first
	// (the chat function also takes changes of messages).
	Method string `json:"method,omitempty"`
}

// Result answers one Item: Status 200 with Data, or an error status with Error,
// as the single call would have answered.
type Result struct {
	Status int             `json:"status"`
	Data   json.RawMessage `json:"data,omitempty"`
	Error  string          `json:"error,omitempty"`
}
