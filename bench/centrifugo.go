package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/gorilla/websocket"

	"easychat/pkg/token"
)

// Centrifugo, measured side by side: built once from the module proxy into
// the user's cache dir (never vendored), run as its own process with the
// memory engine, JSON websocket protocol and HTTP publish API.

const centrifugoModule = "github.com/centrifugal/centrifugo/v6"

// centrifugoBinary returns -centrifugo, or the cached build of
// -centrifugo-version, building it first if needed.
func (sys *system) centrifugoBinary(ctx context.Context) (string, error) {
	if sys.set.cfBin != "" {
		return sys.set.cfBin, nil
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("no user cache dir for the Centrifugo build (pass -centrifugo): %w", err)
	}
	ver := sys.set.cfVersion
	dir := filepath.Join(cache, "easychat-bench", "centrifugo-"+ver)
	bin := filepath.Join(dir, "centrifugo")
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	progress("building Centrifugo %s into %s (once; about a minute on 2 cores)…", ver, dir)
	ldflags := "-X " + centrifugoModule + "/internal/build.Version=" + strings.TrimPrefix(ver, "v")
	scratch, err := os.MkdirTemp("", "easychat-centrifugo-build-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(scratch)
	env := append(os.Environ(), "GOBIN="+dir, "GOFLAGS=-mod=mod", "GOWORK=off")
	run := func(name string, args ...string) error {
		cmd := exec.CommandContext(ctx, name, args...)
		cmd.Dir, cmd.Env = scratch, env
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("%s %s: %w\n%s", name, strings.Join(args, " "), err, out)
		}
		return nil
	}
	err = run("go", "install", "-ldflags", ldflags, centrifugoModule+"@"+ver)
	if err != nil {
		// The proxy may refuse version lists for some modules: build from a
		// scratch module that requires the exact version instead.
		progress("go install failed (%v); trying a scratch module", firstLine(err))
		err = run("go", "mod", "init", "scratch")
		if err == nil {
			err = run("go", "get", centrifugoModule+"@"+ver)
		}
		if err == nil {
			err = run("go", "build", "-ldflags", ldflags, "-o", bin, centrifugoModule)
		}
		if err != nil {
			return "", fmt.Errorf("building Centrifugo %s: %w", ver, err)
		}
	}
	return bin, nil
}

func firstLine(err error) string {
	s, _, _ := strings.Cut(err.Error(), "\n")
	return s
}

type centrifugoProc struct {
	*proc
	addr, apiKey, secret string
}

func (sys *system) startCentrifugo(ctx context.Context) (*centrifugoProc, error) {
	bin, err := sys.centrifugoBinary(ctx)
	if err != nil {
		return nil, err
	}
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	host, port, _ := strings.Cut(addr, ":")
	c := &centrifugoProc{addr: addr, apiKey: "bench-api-key-" + sys.run, secret: "bench-hmac-secret-" + sys.run}
	cfg := map[string]any{
		"http_server": map[string]any{"address": host, "port": port},
		"log":         map[string]any{"level": "error"},
		"engine":      map[string]any{"type": "memory"},
		"client": map[string]any{
			"token":           map[string]any{"hmac_secret_key": c.secret},
			"allowed_origins": []string{"*"},
		},
		"http_api": map[string]any{"key": c.apiKey},
		// Channels without a namespace: any connected client may subscribe.
		"channel":     map[string]any{"without_namespace": map[string]any{"allow_subscribe_for_client": true}},
		"usage_stats": map[string]any{"disabled": true},
		"health":      map[string]any{"enabled": true},
	}
	b, _ := json.MarshalIndent(cfg, "", "  ")
	file := filepath.Join(sys.tmp, "centrifugo.json")
	if err := os.WriteFile(file, b, 0o600); err != nil {
		return nil, err
	}
	p, err := startProc("centrifugo", bin, []string{"--config", file}, []string{"PATH=" + os.Getenv("PATH")}, sys.tmp)
	if err != nil {
		return nil, err
	}
	c.proc = p
	if err := p.waitHTTP("http://"+addr+"/health", 30*time.Second); err != nil {
		p.stop()
		return nil, err
	}
	return c, nil
}

// publish posts data to channel through the HTTP API.
func (c *centrifugoProc) publish(ctx context.Context, hc *http.Client, channel string, data json.RawMessage) error {
	body, _ := json.Marshal(map[string]any{"channel": channel, "data": data})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+c.addr+"/api/publish", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-API-Key", c.apiKey)
	res, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	var out struct {
		Error *struct {
			Code    int    `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if err := json.NewDecoder(res.Body).Decode(&out); err != nil {
		return fmt.Errorf("publish: HTTP %s: %w", res.Status, err)
	}
	if res.StatusCode != http.StatusOK || out.Error != nil {
		return fmt.Errorf("publish: HTTP %s: %+v", res.Status, out.Error)
	}
	return nil
}

// subscribe opens a JSON-protocol websocket for user, connects with a
// connection JWT, subscribes to channel and then hands every publication push
// to onPub. Centrifugo may put several replies in one frame, one per line;
// an empty reply "{}" is a server ping, answered with "{}".
func (c *centrifugoProc) subscribe(ctx context.Context, user, channel string, onPub func(b []byte)) (*wsClient, error) {
	// HS256 with sub = user and exp: a Centrifugo connection token.
	tok, err := token.New(c.secret, time.Hour).Issue(user)
	if err != nil {
		return nil, err
	}
	ws, _, err := dialer.DialContext(ctx, "ws://"+c.addr+"/connection/websocket", nil)
	if err != nil {
		return nil, fmt.Errorf("dialing centrifugo as %s: %w", user, err)
	}
	cl := &wsClient{user: user, ws: ws, done: make(chan struct{})}
	subscribed := make(chan error, 1)
	go func() {
		defer close(cl.done)
		var buf bytes.Buffer
		for {
			b, err := readMessage(ws, &buf)
			if err != nil {
				select {
				case subscribed <- fmt.Errorf("centrifugo closed the socket of %s: %w", user, err):
				default:
				}
				return
			}
			for line := range bytes.SplitSeq(b, []byte{'\n'}) {
				switch {
				case len(line) == 0:
				case string(line) == "{}":
					_ = cl.write([]byte("{}"))
				case bytes.HasPrefix(line, []byte(`{"push"`)):
					onPub(line)
				case bytes.HasPrefix(line, []byte(`{"id":2,`)):
					var r struct {
						Error *struct {
							Message string `json:"message"`
						} `json:"error"`
					}
					_ = json.Unmarshal(line, &r)
					if r.Error != nil {
						subscribed <- fmt.Errorf("centrifugo refused the subscription of %s: %s", user, r.Error.Message)
					} else {
						subscribed <- nil
					}
				case bytes.Contains(line, []byte(`"error"`)):
					select {
					case subscribed <- fmt.Errorf("centrifugo answered %s: %s", user, line):
					default:
					}
				}
			}
		}
	}()
	connect, _ := json.Marshal(map[string]any{"id": 1, "connect": map[string]any{"token": tok, "name": "easychat-bench"}})
	sub, _ := json.Marshal(map[string]any{"id": 2, "subscribe": map[string]any{"channel": channel}})
	if err := cl.write(connect); err != nil {
		cl.close()
		return nil, err
	}
	if err := cl.write(sub); err != nil {
		cl.close()
		return nil, err
	}
	select {
	case err := <-subscribed:
		if err != nil {
			cl.close()
			return nil, err
		}
	case <-time.After(30 * time.Second):
		cl.close()
		return nil, fmt.Errorf("centrifugo: no subscribe reply for %s", user)
	}
	return cl, nil
}

var _ = websocket.TextMessage
