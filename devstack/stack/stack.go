// Package stack wires the whole system on one machine: embedded (or real)
// Kafka, Mongo and Redis, the local FaaS runtime with every function of
// stack.yml deployed through faas-cli, the Kafka connector and one or more
// websocket gateways. The one-command run and the end-to-end tests use it.
package stack

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"easychat/connector/consume"
	"easychat/devstack/embedded"
	"easychat/faas/provider"
	"easychat/gateway/server"
	"easychat/gateway/session"
	"easychat/pkg/blob"
	"easychat/pkg/event"
	"easychat/pkg/nonce"
	"easychat/pkg/route"
	"easychat/pkg/secret"
)

// Config of a stack. Empty external URLs select the embedded servers.
type Config struct {
	RepoRoot string // holds stack.yml, template/, functions/, pkg/
	StateDir string // data of embedded servers, runtime builds, generated secrets

	KafkaBrokers string // external Kafka; empty: embedded
	MongoURI     string // external Mongo; empty: embedded FerretDB
	FerretPGURL  string // embedded FerretDB stores in this PostgreSQL instead of SQLite
	RedisURL     string // external Redis; empty: embedded
	// S3 is an external S3-compatible store (S3Endpoint host:port, with
	// S3AccessKey and S3SecretKey); empty endpoint: the embedded one.
	S3Endpoint, S3Bucket, S3Region string
	S3Secure                       bool
	S3AccessKey, S3SecretKey       string

	KafkaAddr, MongoAddr, RedisAddr, S3Addr string // embedded listeners ("127.0.0.1:0" for any)
	KafkaPartitions                         int32

	FaasPort            int    // 0: any
	FaasUser            string // basic auth of /system/*
	FaasPassword        string // empty: generated and kept in StateDir
	GatewayAddr         string // public websocket listener of the first gateway
	GatewayInternalAddr string
	ConnectorHTTPAddr   string // "" to not serve the connector's metrics
	ConnectorBatch      int    // records per transfer invocation (connector BATCH_MAX)

	JWTSecret   string // empty: generated and kept in StateDir
	InternalKey string // empty: generated and kept in StateDir
	AckMode     session.AckMode
	RouteTTL    time.Duration
	ChatBatch   int // gateway GATEWAY_CHAT_BATCH; 0: the gateway default

	// DeployEnv is extra environment for `faas-cli deploy` (stack.yml reads
	// e.g. CHAT_ZERO_DURATION from it).
	DeployEnv []string
	// Gateway, when set, adjusts each gateway's configuration (tests).
	Gateway func(*server.Config)

	// Cluster, when set, runs gateways and connectors as processes instead
	// of in this process (see Cluster); ClusterGatewayEnv is extra
	// environment for those gateways.
	Cluster           *Cluster
	ClusterGatewayEnv []string

	Logger *slog.Logger
}

// Stack is a running system.
type Stack struct {
	cfg Config
	log *slog.Logger

	Brokers  string
	MongoURI string
	RedisURL string
	S3       blob.S3Config
	Blobs    *blob.S3
	Provider *provider.Provider
	FaasURL  string

	Connector *consume.Connector
	Registry  route.Registry
	rdb       *redis.Client

	mu       sync.Mutex
	gateways []*Gateway

	gatewayProcs, connectorProcs []*Proc
	redis                        *embedded.Redis // nil with an external Redis

	closers []func()
	runCtx  context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
}

// Gateway is one running websocket gateway instance.
type Gateway struct {
	*server.Server
	cancel context.CancelFunc
	done   chan error
}

// URL is the gateway's websocket URL.
func (g *Gateway) URL() string {
	host, port, _ := net.SplitHostPort(g.Addr())
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return "ws://" + net.JoinHostPort(host, port) + g.Config().Path
}

// Stop drains and stops the gateway.
func (g *Gateway) Stop() error {
	g.cancel()
	return <-g.done
}

// Start brings the whole system up and deploys every function.
func Start(ctx context.Context, cfg Config) (_ *Stack, err error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.KafkaPartitions == 0 {
		cfg.KafkaPartitions = 8
	}
	if cfg.FaasUser == "" {
		cfg.FaasUser = "admin"
	}
	if err := os.MkdirAll(cfg.StateDir, 0o755); err != nil {
		return nil, fmt.Errorf("creating state dir: %w", err)
	}
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s := &Stack{cfg: cfg, log: cfg.Logger, cancel: cancel, runCtx: runCtx}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()

	for _, g := range []struct {
		v    *string
		name string
	}{{&s.cfg.FaasPassword, "faas-password"}, {&s.cfg.JWTSecret, "jwt-secret"}, {&s.cfg.InternalKey, "internal-key"},
		{&s.cfg.S3AccessKey, "s3-access-key"}, {&s.cfg.S3SecretKey, "s3-secret-key"}} {
		if *g.v == "" {
			if *g.v, err = generated(filepath.Join(cfg.StateDir, g.name)); err != nil {
				return nil, err
			}
		}
	}

	if err := s.startInfra(runCtx); err != nil {
		return nil, err
	}

	p, err := provider.New(provider.Config{
		Port:       cfg.FaasPort,
		StateDir:   filepath.Join(cfg.StateDir, "faas"),
		StackFiles: []string{filepath.Join(cfg.RepoRoot, "stack.yml")},
		User:       cfg.FaasUser,
		Password:   s.cfg.FaasPassword,
		Logger:     s.log.With("component", "faas"),
	})
	if err != nil {
		return nil, fmt.Errorf("creating faas runtime: %w", err)
	}
	if err := p.Start(runCtx); err != nil {
		return nil, fmt.Errorf("starting faas runtime: %w", err)
	}
	s.Provider, s.FaasURL = p, p.URL()
	s.closers = append(s.closers, func() {
		sctx, c := context.WithTimeout(context.Background(), 20*time.Second)
		defer c()
		p.Shutdown(sctx)
	})

	// Compile the functions first: on a cold build cache one can take longer
	// than faas-cli's fixed 60 s API timeout.
	if err := p.Prebuild(ctx); err != nil {
		return nil, err
	}
	if err := s.deploy(ctx); err != nil {
		return nil, err
	}

	if cfg.Cluster == nil {
		conn, err := s.AddConnector(runCtx, cfg.ConnectorHTTPAddr)
		if err != nil {
			return nil, err
		}
		s.Connector = conn
	}

	opt, err := redis.ParseURL(s.RedisURL)
	if err != nil {
		return nil, fmt.Errorf("parsing redis url: %w", err)
	}
	s.rdb = redis.NewClient(opt)
	ttl := cfg.RouteTTL
	if ttl == 0 {
		ttl = 30 * time.Second
	}
	s.Registry = route.NewRedis(s.rdb, ttl)
	s.closers = append(s.closers, func() { _ = s.rdb.Close() })

	if cfg.Cluster != nil {
		if err := s.startCluster(ctx); err != nil {
			return nil, err
		}
		return s, nil
	}
	if _, err := s.AddGateway(ctx, cfg.GatewayAddr, cfg.GatewayInternalAddr); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *Stack) startInfra(ctx context.Context) error {
	cfg := s.cfg
	if s.Brokers = cfg.KafkaBrokers; s.Brokers == "" {
		k, err := embedded.StartKafka(or(cfg.KafkaAddr, "127.0.0.1:0"), filepath.Join(cfg.StateDir, "kafka"),
			cfg.KafkaPartitions, event.TopicChat, event.TopicRead, event.TopicDead)
		if err != nil {
			return err
		}
		s.closers = append(s.closers, k.Close)
		s.Brokers = k.Brokers()
	}
	if s.MongoURI = cfg.MongoURI; s.MongoURI == "" {
		m, err := embedded.StartMongo(ctx, or(cfg.MongoAddr, "127.0.0.1:0"), filepath.Join(cfg.StateDir, "mongo"),
			cfg.FerretPGURL, s.log.With("component", "ferretdb"))
		if err != nil {
			return err
		}
		s.closers = append(s.closers, m.Close)
		s.MongoURI = m.URI()
	}
	s.S3 = blob.S3Config{Endpoint: cfg.S3Endpoint, Bucket: or(cfg.S3Bucket, "easychat"), Region: or(cfg.S3Region, "us-east-1"),
		Secure: cfg.S3Secure, AccessKey: s.cfg.S3AccessKey, SecretKey: s.cfg.S3SecretKey}
	if s.S3.Endpoint == "" {
		o, err := embedded.StartS3(or(cfg.S3Addr, "127.0.0.1:0"), filepath.Join(cfg.StateDir, "s3"), s.S3.Bucket)
		if err != nil {
			return err
		}
		s.closers = append(s.closers, o.Close)
		s.S3.Endpoint = o.Endpoint()
	}
	b, err := blob.NewS3(s.S3)
	if err != nil {
		return err
	}
	s.Blobs = b
	if cfg.S3Endpoint != "" {
		// A real server's bucket may be new (CI starts one empty).
		bctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		if err := b.EnsureBucket(bctx, s.S3.Region); err != nil {
			return err
		}
	}
	if s.RedisURL = cfg.RedisURL; s.RedisURL == "" {
		r, err := embedded.StartRedis(or(cfg.RedisAddr, "127.0.0.1:0"))
		if err != nil {
			return err
		}
		s.closers = append(s.closers, r.Close)
		s.RedisURL, s.redis = r.URL(), r
	}
	return nil
}

// deploy stores the shared secrets in the runtime and runs `faas-cli deploy`
// on stack.yml, the way a user deploys to OpenFaaS.
func (s *Stack) deploy(ctx context.Context) error {
	for name, val := range map[string]string{secret.Internal: s.cfg.InternalKey, secret.JWT: s.cfg.JWTSecret,
		secret.S3AccessKey: s.cfg.S3AccessKey, secret.S3SecretKey: s.cfg.S3SecretKey} {
		if err := s.putSecret(ctx, name, val); err != nil {
			return err
		}
	}
	return s.faasDeploy(ctx, nil)
}

var functionName = regexp.MustCompile(`^[a-z][a-z0-9-]*$`)

// Redeploy runs `faas-cli deploy` again for the named functions, with extra
// environment for stack.yml's substitutions (e.g. ZERO_DURATION=2s) on top
// of the stack's own. Unchanged sources are not rebuilt.
func (s *Stack) Redeploy(ctx context.Context, env []string, functions ...string) error {
	if len(functions) == 0 {
		return errors.New("redeploy: no function named")
	}
	for _, f := range functions {
		if !functionName.MatchString(f) {
			return fmt.Errorf("redeploy: bad function name %q", f)
		}
	}
	return s.faasDeploy(ctx, env, "--regex", "^("+strings.Join(functions, "|")+")$")
}

func (s *Stack) faasDeploy(ctx context.Context, env []string, args ...string) error {
	cli, err := FaasCLI(s.cfg.RepoRoot)
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, cli, append([]string{"deploy", "-f", "stack.yml", "--gateway", s.FaasURL}, args...)...)
	cmd.Dir = s.cfg.RepoRoot
	cmd.Env = append(os.Environ(),
		"OPENFAAS_URL="+s.FaasURL,
		"KAFKA_BROKERS="+s.Brokers,
		"MONGO_URI="+s.MongoURI,
		"REDIS_URL="+s.RedisURL,
		"S3_ENDPOINT="+s.S3.Endpoint,
		"S3_BUCKET="+s.S3.Bucket,
		"S3_REGION="+s.S3.Region,
		"S3_SECURE="+strconv.FormatBool(s.S3.Secure),
	)
	cmd.Env = append(cmd.Env, s.cfg.DeployEnv...)
	cmd.Env = append(cmd.Env, env...)
	// faas-cli reads credentials from its config; give it a private one.
	cmd.Env = append(cmd.Env, "OPENFAAS_CONFIG="+filepath.Join(s.cfg.StateDir, "faas-cli"))
	if err := s.login(ctx, cli, cmd.Env); err != nil {
		return err
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("faas-cli deploy: %w\n%s", err, out)
	}
	if bytes.Contains(out, []byte("Unexpected status")) || bytes.Contains(out, []byte("rror")) {
		return fmt.Errorf("faas-cli deploy reported failures:\n%s", out)
	}
	s.log.Info("functions deployed", "output", strings.TrimSpace(string(out)))
	return nil
}

func (s *Stack) login(ctx context.Context, cli string, env []string) error {
	cmd := exec.CommandContext(ctx, cli, "login", "--gateway", s.FaasURL, "-u", s.cfg.FaasUser, "--password-stdin")
	cmd.Env = env
	cmd.Stdin = strings.NewReader(s.cfg.FaasPassword)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("faas-cli login: %w\n%s", err, out)
	}
	return nil
}

func (s *Stack) putSecret(ctx context.Context, name, value string) error {
	body, _ := json.Marshal(map[string]string{"name": name, "value": value})
	for _, method := range []string{http.MethodPut, http.MethodPost} {
		req, err := http.NewRequestWithContext(ctx, method, s.FaasURL+"/system/secrets", bytes.NewReader(body))
		if err != nil {
			return err
		}
		req.SetBasicAuth(s.cfg.FaasUser, s.cfg.FaasPassword)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			return fmt.Errorf("storing secret %s: %w", name, err)
		}
		msg, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode/100 == 2 {
			return nil
		}
		if method == http.MethodPost || res.StatusCode != http.StatusNotFound {
			return fmt.Errorf("storing secret %s: %s %s", name, res.Status, msg)
		}
	}
	return nil
}

// AddConnector starts a connector instance in the shared consumer group
// (httpAddr "" serves no metrics); it stops with the stack.
func (s *Stack) AddConnector(ctx context.Context, httpAddr string) (*consume.Connector, error) {
	conn, err := consume.New(consume.Config{
		Brokers:         strings.Split(s.Brokers, ","),
		GatewayURL:      s.FaasURL,
		GatewayUser:     s.cfg.FaasUser,
		GatewayPassword: s.cfg.FaasPassword,
		InternalKey:     s.cfg.InternalKey,
		HTTPAddr:        httpAddr,
		BatchMax:        s.cfg.ConnectorBatch,
	}, s.log.With("component", "connector"))
	if err != nil {
		return nil, fmt.Errorf("creating connector: %w", err)
	}
	// It stops with ctx or with the stack, whichever comes first.
	cctx, cancel := context.WithCancel(s.runCtx)
	stop := context.AfterFunc(ctx, cancel)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer stop()
		defer cancel()
		if err := conn.Run(cctx); err != nil && !errors.Is(err, context.Canceled) {
			s.log.Error("connector stopped", "err", err)
		}
	}()
	return conn, nil
}

// AddGateway starts another gateway instance sharing the registry (addr ""
// picks free ports).
func (s *Stack) AddGateway(ctx context.Context, addr, internalAddr string) (*Gateway, error) {
	return s.AddGatewayWith(ctx, addr, internalAddr, nil)
}

// AddGatewayWith is AddGateway with adjust applied to the instance's
// configuration last (nil: none).
func (s *Stack) AddGatewayWith(ctx context.Context, addr, internalAddr string, adjust func(*server.Config)) (*Gateway, error) {
	cfg := server.DefaultConfig()
	cfg.Addr = or(addr, "127.0.0.1:0")
	cfg.InternalAddr = or(internalAddr, "127.0.0.1:0")
	cfg.FaasURL = s.FaasURL
	cfg.RedisURL = s.RedisURL
	cfg.JWTSecret = s.cfg.JWTSecret
	cfg.InternalKey = s.cfg.InternalKey
	cfg.Files = s.Blobs
	cfg.Replays = nonce.NewRedis(s.rdb)
	if s.cfg.AckMode != "" {
		cfg.AckMode = s.cfg.AckMode
	}
	if s.cfg.RouteTTL > 0 {
		cfg.RouteTTL = s.cfg.RouteTTL
	}
	if s.cfg.ChatBatch > 0 {
		cfg.ChatBatch = s.cfg.ChatBatch
	}
	if s.cfg.Gateway != nil {
		s.cfg.Gateway(&cfg)
	}
	if adjust != nil {
		adjust(&cfg)
	}
	srv, err := server.New(cfg, s.Registry, s.log.With("component", "gateway"))
	if err != nil {
		return nil, fmt.Errorf("creating gateway: %w", err)
	}
	gctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	g := &Gateway{Server: srv, cancel: cancel, done: make(chan error, 1)}
	go func() { g.done <- srv.Run(gctx) }()
	select {
	case <-srv.Ready():
	case err := <-g.done:
		return nil, fmt.Errorf("gateway stopped at start: %w", err)
	case <-time.After(30 * time.Second):
		cancel()
		return nil, errors.New("gateway did not become ready")
	}
	s.mu.Lock()
	s.gateways = append(s.gateways, g)
	s.mu.Unlock()
	return g, nil
}

// Gateways returns the running gateway instances, the first one first.
func (s *Stack) Gateways() []*Gateway {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*Gateway(nil), s.gateways...)
}

// S3Env is the environment that points a component at the stack's S3 store,
// credentials included.
func (s *Stack) S3Env() []string {
	return []string{"S3_ENDPOINT=" + s.S3.Endpoint, "S3_BUCKET=" + s.S3.Bucket, "S3_REGION=" + s.S3.Region,
		"S3_SECURE=" + strconv.FormatBool(s.S3.Secure), "S3_ACCESS_KEY=" + s.S3.AccessKey, "S3_SECRET_KEY=" + s.S3.SecretKey}
}

// Redis is the client of the stack's Redis (routes, nonces, limits, the
// list cache).
func (s *Stack) Redis() *redis.Client { return s.rdb }

// JWTSecret is the key user tokens are signed with.
func (s *Stack) JWTSecret() string { return s.cfg.JWTSecret }

// InternalKey is the key calls between components are signed with.
func (s *Stack) InternalKey() string { return s.cfg.InternalKey }

// FaasCredentials are the runtime's basic-auth user and password.
func (s *Stack) FaasCredentials() (string, string) { return s.cfg.FaasUser, s.cfg.FaasPassword }

// Close stops everything in reverse order of start: gateways drain first,
// then the connector, the runtime (killing every function process) and the
// embedded servers.
func (s *Stack) Close() {
	for _, g := range s.Gateways() {
		_ = g.Stop()
	}
	s.cancel()
	s.wg.Wait()
	for i := len(s.closers) - 1; i >= 0; i-- {
		s.closers[i]()
	}
}

// FaasCLI returns bin/faas-cli, building it from tools/faas-cli if missing.
func FaasCLI(root string) (string, error) {
	bin := filepath.Join(root, "bin", "faas-cli")
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	cmd := exec.Command("go", "build", "-ldflags", "-X github.com/openfaas/faas-cli/version.Version=0.13.14",
		"-o", bin, "github.com/openfaas/faas-cli")
	cmd.Dir = filepath.Join(root, "tools", "faas-cli")
	cmd.Env = append(os.Environ(), "GOWORK=off")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building faas-cli: %w\n%s", err, out)
	}
	return bin, nil
}

// generated returns the secret kept in file, creating a random one first.
func generated(file string) (string, error) {
	if b, err := os.ReadFile(file); err == nil && len(bytes.TrimSpace(b)) > 0 {
		return string(bytes.TrimSpace(b)), nil
	}
	var b [24]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	v := hex.EncodeToString(b[:])
	if err := os.WriteFile(file, []byte(v+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("saving generated %s: %w", filepath.Base(file), err)
	}
	return v, nil
}

func or(v, def string) string {
	if v != "" {
		return v
	}
	return def
}
