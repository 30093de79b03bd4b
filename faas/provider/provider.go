// Package provider is a Docker-free OpenFaaS provider: it serves the gateway
// API with faas-provider's bootstrap, builds functions from the stack files'
// sources, and runs each replica as a local process with scale from and to zero.
package provider

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	bootstrap "github.com/openfaas/faas-provider"
	"github.com/openfaas/faas-provider/proxy"
	"github.com/openfaas/faas-provider/types"

	"easychat/faas/build"
	"easychat/faas/secrets"
)

// Config configures a Provider. Zero values get the defaults noted.
type Config struct {
	// Port of the API; 0 picks a free port (see Provider.URL).
	Port int
	// StateDir holds builds, binaries, secrets and auth files (required).
	StateDir string
	// StackFiles are the stack.yml files deploy requests are matched against.
	StackFiles []string
	// TemplateDir holds template/<lang>; default "template" next to the first stack file.
	TemplateDir string
	// User and Password guard /system/*; User defaults to "admin", Password is required.
	User, Password string
	// ReadTimeout and WriteTimeout bound API requests and invocations (default 60s each).
	ReadTimeout, WriteTimeout time.Duration
	// ColdStartTimeout bounds waiting for a replica to become healthy (default 60s).
	ColdStartTimeout time.Duration
	// IdleCheckInterval is how often idle functions are scaled to zero (default 2s).
	IdleCheckInterval time.Duration
	// StopGracePeriod is the time between SIGTERM and SIGKILL for a replica (default 10s).
	StopGracePeriod time.Duration
	// Logger receives the runtime's logs and every replica's output (default slog.Default()).
	Logger *slog.Logger
}

// Namespace is the only namespace this provider has; requests may also omit it.
const Namespace = "openfaas-fn"

// Provider runs functions as local processes behind the OpenFaaS API.
type Provider struct {
	cfg     Config
	log     *slog.Logger
	builder *build.Builder
	secrets *secrets.Store
	metrics *metrics
	url     string

	// deployMu serializes deploy, update and removal: each may build, and a
	// removal racing a deploy of the same function must not interleave.
	deployMu sync.Mutex

	// mu guards functions and all mutable state of each function.
	mu        sync.Mutex
	functions map[string]*function
	live      map[*replica]struct{} // every replica not yet reaped, for Shutdown
	closed    bool

	ctx    context.Context // ends at Shutdown; parent of replica health checks
	cancel context.CancelFunc
	wg     sync.WaitGroup // replica supervisors and stoppers
}

// served guards bootstrap.Serve: it uses a package-global router and metrics,
// so a second call in the same process would panic or double-register.
var served atomic.Bool

// New validates cfg and prepares a Provider; nothing runs until Start.
func New(cfg Config) (*Provider, error) {
	if cfg.StateDir == "" {
		return nil, errors.New("faas provider: StateDir is required")
	}
	if cfg.Password == "" {
		return nil, errors.New("faas provider: Password is required")
	}
	if cfg.User == "" {
		cfg.User = "admin"
	}
	state, err := filepath.Abs(cfg.StateDir)
	if err != nil {
		return nil, fmt.Errorf("resolving state dir: %w", err)
	}
	cfg.StateDir = state
	for i, f := range cfg.StackFiles {
		if cfg.StackFiles[i], err = filepath.Abs(f); err != nil {
			return nil, fmt.Errorf("resolving stack file %s: %w", f, err)
		}
	}
	if cfg.TemplateDir == "" && len(cfg.StackFiles) > 0 {
		cfg.TemplateDir = filepath.Join(filepath.Dir(cfg.StackFiles[0]), "template")
	}
	if cfg.TemplateDir != "" {
		if cfg.TemplateDir, err = filepath.Abs(cfg.TemplateDir); err != nil {
			return nil, fmt.Errorf("resolving template dir: %w", err)
		}
	}
	setDefault(&cfg.ReadTimeout, 60*time.Second)
	setDefault(&cfg.WriteTimeout, 60*time.Second)
	setDefault(&cfg.ColdStartTimeout, 60*time.Second)
	setDefault(&cfg.IdleCheckInterval, 2*time.Second)
	setDefault(&cfg.StopGracePeriod, 10*time.Second)
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}

	ctx, cancel := context.WithCancel(context.Background())
	p := &Provider{
		cfg:       cfg,
		log:       cfg.Logger,
		builder:   build.New(filepath.Join(state, "build"), filepath.Join(state, "bin"), cfg.TemplateDir, cfg.Logger),
		secrets:   &secrets.Store{Dir: filepath.Join(state, "secrets")},
		metrics:   registerMetrics(),
		functions: map[string]*function{},
		live:      map[*replica]struct{}{},
		ctx:       ctx,
		cancel:    cancel,
	}
	return p, nil
}

func setDefault(d *time.Duration, def time.Duration) {
	if *d <= 0 {
		*d = def
	}
}

// URL is the API's base URL on the loopback interface, valid after Start.
func (p *Provider) URL() string { return p.url }

// Start writes the basic-auth files, serves the API in the background and
// returns once /healthz answers. Only one Provider per process can Start.
func (p *Provider) Start(ctx context.Context) error {
	if !served.CompareAndSwap(false, true) {
		return errors.New("faas provider: already started in this process (faas-provider's router is global)")
	}
	serving := false
	defer func() {
		if !serving { // failed before Serve: another attempt may start
			served.Store(false)
		}
	}()
	authDir := filepath.Join(p.cfg.StateDir, "auth")
	for _, d := range []string{authDir, filepath.Join(p.cfg.StateDir, "secrets-fn")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return fmt.Errorf("creating %s: %w", d, err)
		}
	}
	for name, v := range map[string]string{"basic-auth-user": p.cfg.User, "basic-auth-password": p.cfg.Password} {
		if err := os.WriteFile(filepath.Join(authDir, name), []byte(v), 0o600); err != nil {
			return fmt.Errorf("writing %s: %w", name, err)
		}
	}

	port := p.cfg.Port
	if port == 0 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return fmt.Errorf("choosing a port for the API: %w", err)
		}
		port = l.Addr().(*net.TCPAddr).Port
		l.Close()
	}
	// bootstrap.Serve calls log.Fatal when it cannot listen: check first so a
	// busy port is an error, not the end of the process.
	l, err := net.Listen("tcp", ":"+strconv.Itoa(port))
	if err != nil {
		return fmt.Errorf("API port %d: %w", port, err)
	}
	l.Close()
	p.url = "http://127.0.0.1:" + strconv.Itoa(port)

	fcfg := &types.FaaSConfig{
		TCPPort:         &port,
		ReadTimeout:     p.cfg.ReadTimeout,
		WriteTimeout:    p.cfg.WriteTimeout,
		EnableBasicAuth: true,
		SecretMountPath: authDir,
	}
	handlers := &types.FaaSHandlers{
		FunctionProxy:        p.invocationHandler(proxy.NewHandlerFunc(*fcfg, p)),
		FunctionReader:       p.handleList,
		DeployHandler:        p.handleDeploy(false),
		UpdateHandler:        p.handleDeploy(true),
		DeleteHandler:        p.handleDelete,
		ReplicaReader:        p.handleDescribe,
		ReplicaUpdater:       p.handleScale,
		SecretHandler:        p.handleSecrets,
		LogHandler:           p.handleLogs,
		InfoHandler:          p.handleInfo,
		HealthHandler:        p.handleHealth,
		ListNamespaceHandler: p.handleNamespaces,
	}
	serving = true
	go bootstrap.Serve(handlers, fcfg)

	if err := p.waitAPI(ctx); err != nil {
		return err
	}
	go p.idleLoop() // it talks to the API above
	p.log.Info("faas runtime listening", "url", p.url, "state", p.cfg.StateDir,
		"stacks", p.cfg.StackFiles, "templates", p.cfg.TemplateDir)
	return nil
}

func (p *Provider) waitAPI(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	client := &http.Client{Timeout: time.Second}
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.url+"/healthz", nil)
		if err != nil {
			return fmt.Errorf("building health request: %w", err)
		}
		if res, err := client.Do(req); err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for the API on %s: %w", p.url, ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// Shutdown stops every replica (SIGTERM, SIGKILL after the grace period or
// when ctx ends) and returns once all are reaped. The HTTP listener stays up
// (faas-provider offers no way to close it) and answers 503 from then on.
func (p *Provider) Shutdown(ctx context.Context) {
	p.mu.Lock()
	if !p.closed {
		p.closed = true
		p.cancel()
		for _, f := range p.functions {
			f.stopAllLocked(p)
		}
	}
	procs := make([]*replica, 0, len(p.live))
	for r := range p.live {
		procs = append(procs, r)
	}
	p.mu.Unlock()

	done := make(chan struct{})
	go func() { p.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		p.log.Warn("shutdown deadline passed, killing replicas")
		for _, r := range procs {
			r.proc.Kill()
		}
		<-done
	}
	p.log.Info("faas runtime stopped")
}

func version() *types.VersionInfo {
	v := &types.VersionInfo{Release: "dev", SHA: "unknown"}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				v.SHA = s.Value
			}
		}
		if bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			v.Release = bi.Main.Version
		}
	}
	return v
}
