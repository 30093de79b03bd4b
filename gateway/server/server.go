// Package server wires one gateway instance: the public listener (/ws,
// /api/, /healthz, /readyz, and the browser client at /), the internal
// listener (/internal/push, /metrics),
// route registration in the cluster registry, and graceful drain.
//
// Embedding (the dev stack and tests run several instances in one process):
//
//	cfg := server.DefaultConfig() // or server.ConfigFromEnv()
//	cfg.Addr, cfg.InternalAddr = "127.0.0.1:0", "127.0.0.1:0"
//	s, err := server.New(cfg, registry, logger)
//	go s.Run(ctx)                 // returns after a graceful drain once ctx is cancelled
//	url := "ws://" + s.Addr() + cfg.Path
package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"easychat/gateway/conn"
	"easychat/gateway/fileroute"
	"easychat/gateway/hub"
	"easychat/gateway/invoke"
	"easychat/gateway/metrics"
	"easychat/gateway/session"
	"easychat/gateway/typing"
	"easychat/gateway/web"
	"easychat/pkg/filelink"
	"easychat/pkg/frame"
	"easychat/pkg/nonce"
	"easychat/pkg/push"
	"easychat/pkg/route"
	"easychat/pkg/secret"
	"easychat/pkg/sign"
	"easychat/pkg/token"

	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/redis/go-redis/v9"
)

// PushPath is the internal push endpoint; it is also the signed path.
const PushPath = "/internal/push"

// registryTimeout bounds one registry call.
const registryTimeout = 5 * time.Second

// Server is one gateway instance.
type Server struct {
	cfg      Config
	reg      route.Registry
	log      *slog.Logger
	metrics  *metrics.Metrics
	hub      *hub.Hub
	issuer   *token.Issuer
	signer   *sign.Signer
	env      *session.Env
	upgrader websocket.Upgrader
	connOpts conn.Options
	instance string
	pushURL  string
	// apiFunctions are the functions POST /api/<name> may reach.
	apiFunctions map[string]bool
	apiRates     *callerRates

	pubLn, intLn   net.Listener
	pub, internal  *http.Server
	callCancel     context.CancelFunc
	running        atomic.Bool
	draining       atomic.Bool
	registryOK     atomic.Bool
	ready          chan struct{}
	conns          sync.WaitGroup // websocket handlers
	closeListeners sync.Once
}

// New validates cfg, binds both listeners (so Addr and InternalAddr are known
// before Run, also with port 0) and returns the server. reg is the route
// registry (see NewRedisRegistry). Call Run to serve, or Close to release the
// listeners without serving.
func New(cfg Config, reg route.Registry, logger *slog.Logger) (*Server, error) {
	if reg == nil {
		return nil, errors.New("gateway: a route registry is required")
	}
	if logger == nil {
		logger = slog.Default()
	}
	cfg, err := checked(cfg)
	if err != nil {
		return nil, err
	}
	log := logger.With("instance", cfg.InstanceID)
	if cfg.JWTSecret == token.DevSecret || cfg.InternalKey == sign.DevKey {
		log.Warn("running on the published development secrets (" + secret.DevSwitch + "=1): never do this in production")
	}
	pubLn, intLn, pushURL, err := listen(cfg, log)
	if err != nil {
		return nil, err
	}

	m := metrics.New()
	replays := cfg.Replays
	if replays == nil {
		replays = nonce.NewMemory()
	}
	signer := sign.New(cfg.InternalKey).WithReplays(replays)
	callCtx, callCancel := context.WithCancel(context.Background())
	s := &Server{
		cfg:      cfg,
		reg:      reg,
		log:      log,
		metrics:  m,
		hub:      hub.New(),
		issuer:   token.New(cfg.JWTSecret, time.Hour), // verification only; ttl unused
		signer:   signer,
		instance: cfg.InstanceID,
		pushURL:  pushURL,
		pubLn:    pubLn,
		intLn:    intLn,
		ready:    make(chan struct{}),
		connOpts: conn.Options{
			SendQueue: cfg.SendQueue,
			WriteWait: cfg.WriteWait,
			PongWait:  cfg.PongWait,
			MaxFrame:  cfg.MaxFrameBytes,
		},
		callCancel:   callCancel,
		apiFunctions: map[string]bool{},
		apiRates:     newCallerRates(cfg.APIRate, cfg.APIBurst),
	}
	for _, fn := range cfg.APIFunctions {
		s.apiFunctions[fn] = true
	}
	s.env = &session.Env{
		Config: session.Config{
			Methods:        cfg.Methods,
			AckMode:        cfg.AckMode,
			AckResend:      cfg.AckResend,
			AckRetries:     cfg.AckRetries,
			ChatQueue:      cfg.ChatQueue,
			MaxInflight:    cfg.MaxInflight,
			CallTimeout:    cfg.CallTimeout,
			QueueWait:      cfg.ChatQueueWait,
			MaxFrame:       cfg.MaxFrameBytes,
			MaxOnlineUsers: cfg.MaxOnlineUsers,
			FrameRate:      cfg.FrameRate,
			FrameBurst:     cfg.FrameBurst,
		},
		Caller:   s.caller(callCtx),
		Presence: reg,
		Typing: &typing.Relay{Groups: s.client(), Routes: reg, Push: push.NewClient(s.signer),
			GroupFunction: "group"},
		Tracker:  &session.Tracker{},
		Metrics:  m,
		Instance: cfg.InstanceID,
		CallCtx:  callCtx,
	}
	s.upgrader = websocket.Upgrader{
		HandshakeTimeout: 10 * time.Second,
		CheckOrigin:      s.checkOrigin,
		// Small per-socket buffers: an idle socket should cost little. The
		// read buffer replaces the HTTP connection's 4 KiB one; data frames
		// are written by package conn, so gorilla's write buffer is only
		// borrowed from the pool for control frames.
		ReadBufferSize:  cfg.ReadBuffer,
		WriteBufferPool: conn.WriteBufferPool,
	}
	s.pub, s.internal = s.httpServers()
	return s, nil
}

// checked fills in cfg's defaults and refuses what cannot run.
func checked(cfg Config) (Config, error) {
	cfg = cfg.withDefaults()
	if !strings.HasPrefix(cfg.Path, "/") {
		return cfg, fmt.Errorf("gateway: path %q must start with /", cfg.Path)
	}
	if _, err := session.ParseAckMode(string(cfg.AckMode)); err != nil {
		return cfg, fmt.Errorf("gateway: %w", err)
	}
	var err error
	if cfg.JWTSecret, err = secret.Check(secret.JWT, "JWT_SECRET", cfg.JWTSecret, token.DevSecret); err != nil {
		return cfg, fmt.Errorf("gateway: %w", err)
	}
	if cfg.InternalKey, err = secret.Check(secret.Internal, "INTERNAL_KEY", cfg.InternalKey, sign.DevKey); err != nil {
		return cfg, fmt.Errorf("gateway: %w", err)
	}
	if cfg.InstanceID == "" {
		cfg.InstanceID = randomID()
	}
	return cfg, nil
}

// listen binds the public and internal listeners and works out the URL
// other components push to.
func listen(cfg Config, log *slog.Logger) (pub, internal net.Listener, pushURL string, err error) {
	pub, err = net.Listen("tcp", cfg.Addr)
	if err != nil {
		return nil, nil, "", fmt.Errorf("gateway: listening on %s: %w", cfg.Addr, err)
	}
	internal, err = net.Listen("tcp", cfg.InternalAddr)
	if err != nil {
		pub.Close()
		return nil, nil, "", fmt.Errorf("gateway: listening on internal %s: %w", cfg.InternalAddr, err)
	}
	pushURL = strings.TrimRight(cfg.PushURL, "/")
	if pushURL == "" {
		pushURL = "http://" + internal.Addr().String()
		if ip := internal.Addr().(*net.TCPAddr).IP; ip.IsUnspecified() {
			log.Warn("internal listener binds all interfaces but GATEWAY_PUSH_URL is unset; other hosts cannot use the derived push URL", "push_url", pushURL)
		}
	}
	return pub, internal, pushURL, nil
}

// fileHandler serves /files/: uploads and downloads on signed links.
func (s *Server) fileHandler() http.Handler {
	if s.cfg.Files == nil {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			apiError(w, http.StatusServiceUnavailable, "files are not configured on this gateway")
		})
	}
	return &fileroute.Handler{Blobs: s.cfg.Files, Links: filelink.New(s.cfg.InternalKey), Metrics: s.metrics,
		Log: s.log.With("component", "files"), Timeout: s.cfg.FileTimeout, Draining: s.draining.Load,
		Quota: fileroute.NewQuota(s.cfg.FileRate*(1<<20), s.cfg.FileBurst<<20, s.cfg.FileTransfers)}
}

// client calls functions, signed, observed in the metrics.
func (s *Server) client() *invoke.Client {
	m := s.metrics
	return invoke.New(s.cfg.FaasURL, s.signer, nil, func(fn, outcome string, d time.Duration) {
		m.FunctionSeconds.WithLabelValues(fn, outcome).Observe(d.Seconds())
	})
}

// caller is how sessions call functions: signed calls, and the chat
// method's frames batched across sockets.
func (s *Server) caller(callCtx context.Context) session.Caller {
	cfg, m := s.cfg, s.metrics
	client := s.client()
	fn := cfg.Methods[frame.MethodChat]
	if fn == "" || cfg.ChatBatch <= 1 {
		return client
	}
	return invoke.Batching{B: invoke.NewBatcher(client, fn, invoke.BatchOptions{
		Max:      cfg.ChatBatch,
		MaxBytes: cfg.ChatBatchBytes,
		Inflight: cfg.ChatInflight,
		Timeout:  cfg.CallTimeout,
		Ctx:      callCtx,
		Sizes:    func(n int) { m.BatchSize.Observe(float64(n)) },
	})}
}

// httpServers are the public server (websocket, API, health, the browser
// client) and the internal one (push, metrics).
func (s *Server) httpServers() (pub, internal *http.Server) {
	cfg, m, log := s.cfg, s.metrics, s.log
	mux := http.NewServeMux()
	mux.HandleFunc(cfg.Path, s.serveWS)
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("/readyz", s.serveReady)
	mux.HandleFunc(APIPrefix, s.serveAPI)
	mux.Handle(filelink.Path, s.fileHandler())
	// The browser client; the patterns above are more specific and win.
	mux.Handle("/", web.Handler())
	// Slow clients are cut: headers within 5 s, the whole request (an API
	// body) within ReadTimeout, and idle keep-alive connections after
	// IdleTimeout; connections not yet upgraded are bounded (conns.go).
	// No WriteTimeout: it would also bound the hijacked websocket; the API
	// handler sets its own write deadline.
	pending := newPendingConns(cfg.MaxPendingConns, cfg.MaxPendingPerIP, func() { m.Rejected.WithLabelValues("too_many_connections").Inc() })
	pub = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: cfg.ReadTimeout,
		IdleTimeout: cfg.IdleTimeout, MaxHeaderBytes: 16 << 10, ConnState: pending.track,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelDebug)}

	in := http.NewServeMux()
	in.HandleFunc(PushPath, s.servePush)
	in.Handle("/metrics", promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{Registry: m.Registry}))
	in.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "ok") })
	internal = &http.Server{Handler: in, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: time.Minute,
		IdleTimeout: 2 * time.Minute, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelDebug)}
	return pub, internal
}

// Addr is the bound public (websocket) address, e.g. "127.0.0.1:10090".
func (s *Server) Addr() string { return s.pubLn.Addr().String() }

// InternalAddr is the bound internal (push, metrics) address.
func (s *Server) InternalAddr() string { return s.intLn.Addr().String() }

// PushURL is the base URL announced in the registry; pushes go to PushURL()+"/internal/push".
func (s *Server) PushURL() string { return s.pushURL }

// InstanceID is this instance's id in the route registry.
func (s *Server) InstanceID() string { return s.instance }

// Config returns the effective configuration (defaults filled in).
func (s *Server) Config() Config { return s.cfg }

// Metrics exposes the instance's collectors (tests read them).
func (s *Server) Metrics() *metrics.Metrics { return s.metrics }

// Ready is closed once Run has announced the instance (or tried to) and serves.
func (s *Server) Ready() <-chan struct{} { return s.ready }

// Close releases the listeners of a server that was never Run.
func (s *Server) Close() error {
	if s.running.Load() {
		return errors.New("gateway: server is running; cancel Run's context instead")
	}
	s.closeListenersNow()
	s.callCancel()
	return nil
}

func (s *Server) closeListenersNow() {
	s.closeListeners.Do(func() {
		s.pubLn.Close()
		s.intLn.Close()
	})
}

// Run serves until ctx is cancelled, then drains: it stops accepting sockets,
// leaves the registry, waits up to DrainTimeout for in-flight function calls
// (so their acks still reach the clients), closes every socket with 1001
// "going away", and stops the internal listener. It returns nil after a
// drain caused by ctx, or the error of a listener that failed.
func (s *Server) Run(ctx context.Context) error {
	if !s.running.CompareAndSwap(false, true) {
		return errors.New("gateway: Run called twice")
	}
	// Announce before serving, so pushes can find sockets from the start.
	s.heartbeat(ctx)

	errc := make(chan error, 2)
	go func() { errc <- serve(s.pub, s.pubLn, "public") }()
	go func() { errc <- serve(s.internal, s.intLn, "internal") }()

	refreshCtx, stopRefresh := context.WithCancel(ctx)
	refreshDone := make(chan struct{})
	go func() {
		defer close(refreshDone)
		s.refreshLoop(refreshCtx)
	}()
	s.log.Info("gateway serving", "addr", s.Addr(), "path", s.cfg.Path, "internal", s.InternalAddr(),
		"push_url", s.pushURL, "ack_mode", s.cfg.AckMode, "faas", s.cfg.FaasURL)
	close(s.ready)

	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-errc:
		s.log.Error("listener failed; draining", "err", runErr)
	}
	stopRefresh()
	<-refreshDone
	s.drain()
	return runErr
}

func serve(srv *http.Server, ln net.Listener, name string) error {
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serving %s listener: %w", name, err)
	}
	return nil
}

func (s *Server) drain() {
	start := time.Now()
	s.draining.Store(true)
	// From here new frames get "temporarily unavailable, retry"; the client
	// resends them to another instance after reconnecting.
	s.env.Tracker.Refuse()
	s.log.Info("draining", "sockets", s.hub.Len(), "inflight", s.env.Tracker.Inflight())

	// Stop accepting sockets. Shutdown also waits for handshakes in progress,
	// so every websocket handler has registered with s.conns after it.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	if err := s.pub.Shutdown(ctx); err != nil {
		s.log.Warn("stopping public listener", "err", err)
	}
	cancel()

	// Stop routing pushes here.
	ctx, cancel = context.WithTimeout(context.Background(), registryTimeout)
	if err := s.reg.Leave(ctx, s.instance); err != nil {
		s.log.Warn("leaving route registry", "err", err)
	}
	cancel()

	// Let accepted frames finish, so what was accepted is acked.
	deadline := start.Add(s.cfg.DrainTimeout)
	ctx, cancel = context.WithDeadline(context.Background(), deadline)
	if err := s.env.Tracker.Drain(ctx); err != nil {
		s.log.Warn("drain deadline passed with function calls in flight; cancelling them", "inflight", s.env.Tracker.Inflight())
	}
	cancel()
	s.callCancel()

	socks := s.hub.CloseAll(websocket.CloseGoingAway, "going away")
	done := make(chan struct{})
	go func() {
		s.conns.Wait()
		close(done)
	}()
	// Peers get the close grace plus a write bound to answer; then they are cut.
	grace := time.NewTimer(max(time.Until(deadline), time.Second+s.cfg.WriteWait))
	select {
	case <-done:
	case <-grace.C:
		s.log.Warn("sockets still open after drain grace; cutting them")
		for _, c := range socks {
			c.(*conn.Conn).Kill()
		}
		<-done
	}
	grace.Stop()

	ctx, cancel = context.WithTimeout(context.Background(), 5*time.Second)
	if err := s.internal.Shutdown(ctx); err != nil {
		s.log.Warn("stopping internal listener", "err", err)
	}
	cancel()
	s.closeListenersNow()
	s.log.Info("drained", "took", time.Since(start).Round(time.Millisecond), "sockets", len(socks))
}

// heartbeat announces the instance and refreshes all local users' routes in
// one Bind call.
func (s *Server) heartbeat(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, registryTimeout)
	defer cancel()
	err := s.reg.Heartbeat(ctx, s.instance, s.pushURL)
	if err == nil {
		if users := s.hub.Users(); len(users) > 0 {
			err = s.reg.Bind(ctx, s.instance, users...)
		}
	}
	if err != nil {
		if s.registryOK.Swap(false) || ctx.Err() == nil {
			s.log.Warn("route registry heartbeat failed", "err", err)
		}
		return
	}
	if !s.registryOK.Swap(true) {
		s.log.Info("route registry reachable")
	}
}

func (s *Server) refreshLoop(ctx context.Context) {
	every := max(s.cfg.RouteTTL/3, 10*time.Millisecond)
	for {
		wait := every
		if !s.registryOK.Load() {
			wait = min(every, time.Second) // recover quickly
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		s.heartbeat(ctx)
	}
}

func (s *Server) serveReady(w http.ResponseWriter, r *http.Request) {
	switch {
	case s.draining.Load():
		http.Error(w, "draining", http.StatusServiceUnavailable)
	case !s.registryOK.Load():
		http.Error(w, "route registry unreachable", http.StatusServiceUnavailable)
	default:
		fmt.Fprintln(w, "ready")
	}
}

// bind routes user to this instance (its first socket here).
func (s *Server) bind(user string) {
	ctx, cancel := context.WithTimeout(context.Background(), registryTimeout)
	defer cancel()
	if err := s.reg.Bind(ctx, s.instance, user); err != nil {
		// The next refresh retries; until then pushes to this user miss.
		s.log.Warn("binding user route", "user", user, "err", err)
	}
}

// unbind removes user's route (its last socket here closed).
func (s *Server) unbind(user string) {
	ctx, cancel := context.WithTimeout(context.Background(), registryTimeout)
	defer cancel()
	if err := s.reg.Unbind(ctx, s.instance, user); err != nil {
		s.log.Warn("unbinding user route", "user", user, "err", err)
	}
	// A new socket of the user may have bound while we unbound; restore it
	// rather than leave it unroutable until the next refresh.
	if s.hub.Has(user) {
		if err := s.reg.Bind(ctx, s.instance, user); err != nil {
			s.log.Warn("rebinding user route", "user", user, "err", err)
		}
	}
}

func (s *Server) checkOrigin(r *http.Request) bool {
	if len(s.cfg.AllowedOrigins) == 0 {
		return true
	}
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true // not a browser
	}
	for _, o := range s.cfg.AllowedOrigins {
		if o == "*" || strings.EqualFold(o, origin) {
			return true
		}
	}
	return false
}

// NewRedisRegistry returns the route registry on the Redis at redisURL
// (redis://[user:pass@]host:port/db) with entries living ttl, and the client
// for the caller to close. It does not connect: an unreachable Redis shows in
// /readyz and the logs, and the gateway recovers when it comes back.
func NewRedisRegistry(redisURL string, ttl time.Duration) (*route.Redis, *redis.Client, error) {
	opt, err := redis.ParseURL(redisURL)
	if err != nil {
		return nil, nil, fmt.Errorf("parsing redis url: %w", err)
	}
	rdb := redis.NewClient(opt)
	return route.NewRedis(rdb, ttl), rdb, nil
}

func randomID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return "gw-" + hex.EncodeToString(b)
}
