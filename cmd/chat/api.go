package main

import (
	"bytes"
	"context"
	"easychat/pkg/frame"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// API calls the gateway's HTTP API: POST /api/<function>.
type API struct {
	Base  string // http://host:port
	Token string
	HTTP  *http.Client
}

// APIError is a non-2xx answer.
type APIError struct {
	Status int
	Msg    string
}

func (e *APIError) Error() string { return fmt.Sprintf("%s (HTTP %d)", e.Msg, e.Status) }

// Call posts body to /api/fn and decodes the answer into out (if not nil).
func (a *API) Call(ctx context.Context, fn string, body, out any) error {
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.url("/api/"+fn), bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if a.Token != "" {
		req.Header.Set("Authorization", "Bearer "+a.Token)
	}
	hc := a.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second}
	}
	res, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	data, err := io.ReadAll(io.LimitReader(res.Body, 8<<20))
	if err != nil {
		return err
	}
	if res.StatusCode/100 != 2 {
		return apiError(res.StatusCode, data)
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(data, out)
}

// apiError reads a refusal: {"error": "..."}, or the body as it is.
func apiError(status int, data []byte) *APIError {
	var e struct {
		Error string `json:"error"`
	}
	_ = json.Unmarshal(data, &e)
	if e.Error == "" {
		e.Error = strings.TrimSpace(string(data))
	}
	return &APIError{Status: status, Msg: e.Error}
}

// url is the gateway's http(s) address of path. The API and /files/ share
// the websocket's origin, so a ws:// or wss:// -url works as well.
func (a *API) url(path string) string {
	base := strings.TrimRight(a.Base, "/")
	if u, err := url.Parse(base); err == nil {
		switch u.Scheme {
		case "ws":
			u.Scheme = "http"
		case "wss":
			u.Scheme = "https"
		}
		base = u.String()
	}
	return base + path
}

// Session is the answer to login and register.
type Session struct {
	UserID   string `json:"userId"`
	Nickname string `json:"nickname"`
	Token    string `json:"token"`
}

// Group is a group as the API returns it.
type Group struct {
	GroupID string   `json:"groupId"`
	Name    string   `json:"name"`
	Owner   string   `json:"owner"`
	Members []string `json:"members"`
}

func (a *API) Login(ctx context.Context, user, password string) (Session, error) {
	var s Session
	err := a.Call(ctx, "user", map[string]string{"action": "login", "userId": user, "password": password}, &s)
	return s, err
}

func (a *API) Register(ctx context.Context, user, password, nickname string) (Session, error) {
	var s Session
	err := a.Call(ctx, "user", map[string]string{"action": "register", "userId": user, "password": password, "nickname": nickname}, &s)
	return s, err
}

func (a *API) Me(ctx context.Context) (Session, error) {
	var s Session
	err := a.Call(ctx, "user", map[string]string{"action": "me"}, &s)
	return s, err
}

func (a *API) List(ctx context.Context) ([]ConvInfo, error) {
	var res struct {
		Conversations []ConvInfo `json:"conversations"`
	}
	err := a.Call(ctx, "conversation", map[string]string{"action": "list"}, &res)
	return res.Conversations, err
}

// History returns up to limit messages with seq < before (0: the newest),
// newest first, and the conversation's change version when read.
func (a *API) History(ctx context.Context, conv string, before, limit int64) ([]frame.Push, int64, error) {
	var res struct {
		Messages []frame.Push `json:"messages"`
		Version  int64        `json:"version"`
	}
	err := a.Call(ctx, "conversation", map[string]any{"action": "history", "conversationId": conv, "before": before, "limit": limit}, &res)
	return res.Messages, res.Version, err
}

// Members returns a group with its members (members only).
func (a *API) Members(ctx context.Context, group string) (Group, error) {
	var g Group
	err := a.Call(ctx, "group", map[string]any{"action": "members", "groupId": group}, &g)
	return g, err
}

func (a *API) CreateGroup(ctx context.Context, name string, members []string) (Group, error) {
	var g Group
	if members == nil {
		members = []string{}
	}
	err := a.Call(ctx, "group", map[string]any{"action": "create", "name": name, "members": members}, &g)
	return g, err
}

func (a *API) AddMembers(ctx context.Context, group string, members []string) (Group, error) {
	var g Group
	err := a.Call(ctx, "group", map[string]any{"action": "add", "groupId": group, "members": members}, &g)
	return g, err
}

// wsURL turns the gateway's base URL into its websocket URL.
func wsURL(base string) (string, error) {
	u, err := url.Parse(base)
	if err != nil {
		return "", err
	}
	switch u.Scheme {
	case "http":
		u.Scheme = "ws"
	case "https":
		u.Scheme = "wss"
	case "ws", "wss":
	default:
		return "", fmt.Errorf("gateway URL %q: want http(s)://host:port", base)
	}
	if u.Host == "" {
		return "", fmt.Errorf("gateway URL %q has no host", base)
	}
	u.Path = strings.TrimRight(u.Path, "/") + "/ws"
	u.RawQuery = ""
	return u.String(), nil
}
