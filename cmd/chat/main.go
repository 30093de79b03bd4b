// Command chat is a terminal client for Easy Chat: it logs in over the HTTP
// API, holds a websocket to the gateway (reconnecting with backoff and
// syncing what it missed), prints pushes and read receipts, and reads
// commands and messages from stdin.
//
//	go run ./cmd/chat -user alice -password s3cret-pw            # log in
//	go run ./cmd/chat -user alice -password s3cret-pw -register  # create the account first
//	go run ./cmd/chat -token <jwt>                               # a token from `make run`
//
// Then: /list, /open bob, type to send, /reply #12 text, /edit #12 text,
// /recall #12, /delete #12, /react #12 👍, /send ./chart.png, /get #13,
// /group create team bob carol, /online bob, /quit. /help lists everything.
package main

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"easychat/pkg/frame"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// options are the command line, with environment defaults.
type options struct {
	url, token, user, password, nickname string
	register                             bool
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("chat", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.url, "url", envOr("EASYCHAT_URL", "http://127.0.0.1:10090"), "gateway URL (env EASYCHAT_URL)")
	fs.StringVar(&o.token, "token", os.Getenv("EASYCHAT_TOKEN"), "JWT to use instead of logging in (env EASYCHAT_TOKEN)")
	fs.StringVar(&o.user, "user", os.Getenv("EASYCHAT_USER"), "user id to log in as (env EASYCHAT_USER)")
	fs.StringVar(&o.password, "password", os.Getenv("EASYCHAT_PASSWORD"), "password (env EASYCHAT_PASSWORD)")
	fs.BoolVar(&o.register, "register", false, "create the account (-user, -password) before logging in")
	fs.StringVar(&o.nickname, "nickname", "", "display name for -register")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: chat [-url URL] (-token JWT | -user ID -password PW [-register])\n\n"+
			"A terminal client for Easy Chat. Reads commands and messages from stdin.\n\n")
		fs.PrintDefaults()
		fmt.Fprintf(fs.Output(), "\n%s\n", helpText)
	}
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	if o.token == "" && o.user == "" {
		return o, errors.New("give -token, or -user and -password (see -h)")
	}
	if o.token == "" && o.password == "" {
		return o, errors.New("-password (or EASYCHAT_PASSWORD) is required with -user")
	}
	return o, nil
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	o, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "chat:", err)
		return 2
	}
	ws, err := wsURL(o.url)
	if err != nil {
		fmt.Fprintln(stderr, "chat:", err)
		return 2
	}
	out := &Printer{w: stdout}
	api := &API{Base: o.url, Token: o.token}

	me, err := login(ctx, api, o)
	if err != nil {
		fmt.Fprintln(stderr, "chat:", printable(err.Error())) // may quote the server
		return 1
	}
	out.Printf("Signed in as %s at %s. /help lists commands.\n", printable(me), o.url)

	app := &App{Me: me, API: api, Store: NewStore(me), Out: out}
	conn := &Conn{URL: ws, Token: api.Token, Backoff: Backoff{Base: 500 * time.Millisecond, Max: 15 * time.Second}}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	conn.OnFrame = func(f frame.Frame) { app.OnFrame(ctx, f) }
	conn.OnConnect = app.OnConnect
	firstOnline := make(chan struct{})
	conn.OnState = connState(out, firstOnline)
	app.Conn = conn
	if l, err := api.List(ctx); err == nil {
		app.Store.ApplyList(l)
		for _, line := range listLines(me, l, time.Now()) {
			out.Println(line)
		}
	}
	connDone := make(chan struct{})
	go func() {
		conn.Run(ctx)
		close(connDone)
	}()

	// Commands read before the socket is up would only queue: wait a
	// little for it (scripts pipe commands in at once).
	select {
	case <-firstOnline:
	case <-time.After(10 * time.Second):
	case <-ctx.Done():
	}

	app.commands(ctx, readLines(stdin))
	app.waitAcks(ctx, 5*time.Second)
	cancel()
	<-connDone
	return 0
}

// connState prints the connection's changes and closes firstOnline the
// first time it is up.
func connState(out *Printer, firstOnline chan struct{}) func(state string, err error, wait time.Duration) {
	wasOffline := false
	return func(state string, err error, wait time.Duration) {
		switch state {
		case "online":
			select {
			case <-firstOnline:
			default:
				close(firstOnline)
			}
			if wasOffline {
				out.Println("● online again")
			} else {
				out.Println("● online")
			}
			wasOffline = false
		case "offline":
			wasOffline = true
			out.Printf("○ offline (%s); retrying in %s\n", printable(fmt.Sprint(err)), wait.Round(100*time.Millisecond))
		}
	}
}

// readLines sends the lines of r, and closes the channel at its end.
func readLines(r io.Reader) <-chan string {
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 64<<10), 64<<10)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	return lines
}

// commands runs the typed commands until /quit, the end of input or ctx.
func (a *App) commands(ctx context.Context, lines <-chan string) {
	for {
		select {
		case <-ctx.Done():
			return
		case line, ok := <-lines:
			if !ok {
				return
			}
			cmd, err := Parse(line)
			if err != nil {
				a.Out.Println("  ! " + err.Error())
				continue
			}
			if a.Handle(ctx, cmd) {
				return
			}
		}
	}
}

// waitAcks gives messages still being sent up to d to be acked, and says
// how many were not.
func (a *App) waitAcks(ctx context.Context, d time.Duration) {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) && a.pending() > 0 && ctx.Err() == nil {
		time.Sleep(50 * time.Millisecond)
	}
	if n := a.pending(); n > 0 {
		a.Out.Printf("  ! %d message(s) or change(s) not acked by the server; they may not have been sent\n", n)
	}
}

func (a *App) pending() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.outbox) + a.inflight
}

// login returns the user id, logging in (or registering) unless a token was
// given.
func login(ctx context.Context, api *API, o options) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if o.token != "" {
		s, err := api.Me(ctx)
		if err == nil {
			return s.UserID, nil
		}
		var ae *APIError
		if errors.As(err, &ae) && ae.Status == 401 {
			return "", errors.New("the token was rejected (expired or wrong secret)")
		}
		if sub := tokenSubject(o.token); sub != "" {
			return sub, nil // the API is down; the socket will tell
		}
		return "", err
	}
	if o.register {
		s, err := api.Register(ctx, o.user, o.password, o.nickname)
		if err != nil {
			return "", fmt.Errorf("register: %w", err)
		}
		api.Token = s.Token
		return s.UserID, nil
	}
	s, err := api.Login(ctx, o.user, o.password)
	if err != nil {
		return "", fmt.Errorf("login: %w", err)
	}
	api.Token = s.Token
	return s.UserID, nil
}

// tokenSubject reads the sub claim of a JWT without verifying it (the
// server verifies).
func tokenSubject(tok string) string {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return ""
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return ""
	}
	var claims struct {
		Sub string `json:"sub"`
	}
	if json.Unmarshal(b, &claims) != nil {
		return ""
	}
	return claims.Sub
}
