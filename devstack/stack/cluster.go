package stack

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// Cluster runs the long-running parts as separate processes, the way a
// deployment has them, so they can be killed and scaled like pods: the
// simulation of a real deployment on one machine.
type Cluster struct {
	Gateways   int // gateway processes (default 3)
	Connectors int // connector processes in one consumer group (default 2)
	Replicas   int // replicas of chat and transfer (default 3)
}

func (c *Cluster) defaults() {
	if c.Gateways <= 0 {
		c.Gateways = 3
	}
	if c.Connectors <= 0 {
		c.Connectors = 2
	}
	if c.Replicas <= 0 {
		c.Replicas = 3
	}
}

// Proc is a gateway or connector process of a cluster. It keeps its
// addresses across restarts, as a pod behind a Service keeps its name.
type Proc struct {
	Name     string
	Addr     string // gateway: public listener; connector: /metrics /healthz /readyz
	Internal string // gateway: internal listener
	bin      string
	env      []string
	logPath  string
	path     string // for /readyz

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

// URL is a gateway process's websocket URL.
func (p *Proc) URL() string { return "ws://" + p.Addr + "/ws" }

// PID of the running process (0 when stopped).
func (p *Proc) PID() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return 0
	}
	return p.cmd.Process.Pid
}

// Start starts the process and waits until it reports ready.
func (p *Proc) Start(ctx context.Context) error {
	p.mu.Lock()
	if p.cmd != nil {
		p.mu.Unlock()
		return fmt.Errorf("%s is running", p.Name)
	}
	logf, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		p.mu.Unlock()
		return fmt.Errorf("opening %s: %w", p.logPath, err)
	}
	cmd := exec.Command(p.bin)
	cmd.Env = p.env
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		p.mu.Unlock()
		return fmt.Errorf("starting %s: %w", p.Name, err)
	}
	done := make(chan struct{})
	p.cmd, p.done = cmd, done
	p.mu.Unlock()
	go func() {
		_ = cmd.Wait()
		logf.Close()
		p.mu.Lock()
		if p.cmd == cmd {
			p.cmd = nil
		}
		p.mu.Unlock()
		close(done)
	}()
	return p.waitReady(ctx, done)
}

func (p *Proc) waitReady(ctx context.Context, done <-chan struct{}) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	client := &http.Client{Timeout: time.Second}
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+p.Addr+p.path, nil)
		if res, err := client.Do(req); err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-done:
			return fmt.Errorf("%s exited before it was ready (log: %s)", p.Name, p.logPath)
		case <-ctx.Done():
			return fmt.Errorf("%s not ready: %w (log: %s)", p.Name, ctx.Err(), p.logPath)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Kill sends SIGKILL, as a node failure or an OOM kill does, and waits for
// the process to be gone.
func (p *Proc) Kill() error { return p.stop(syscall.SIGKILL, 0) }

// Stop sends SIGTERM and waits up to grace before killing.
func (p *Proc) Stop(grace time.Duration) error { return p.stop(syscall.SIGTERM, grace) }

func (p *Proc) stop(sig syscall.Signal, grace time.Duration) error {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.mu.Unlock()
	if cmd == nil {
		return nil
	}
	if err := cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("signalling %s: %w", p.Name, err)
	}
	if sig != syscall.SIGKILL {
		select {
		case <-done:
			return nil
		case <-time.After(grace):
			_ = cmd.Process.Kill()
		}
	}
	<-done
	return nil
}

// GatewayProcs and ConnectorProcs are the cluster's processes (nil
// without Config.Cluster).
func (s *Stack) GatewayProcs() []*Proc   { return s.gatewayProcs }
func (s *Stack) ConnectorProcs() []*Proc { return s.connectorProcs }

// startCluster builds the gateway and connector, scales chat and transfer,
// and starts the processes.
func (s *Stack) startCluster(ctx context.Context) error {
	c := s.cfg.Cluster
	c.defaults()
	for _, fn := range []string{"chat", "transfer"} {
		if err := s.Provider.Scale(fn, c.Replicas); err != nil {
			return fmt.Errorf("scaling %s to %d: %w", fn, c.Replicas, err)
		}
	}
	binDir := filepath.Join(s.cfg.StateDir, "bin")
	logDir := filepath.Join(s.cfg.StateDir, "logs")
	for _, d := range []string{binDir, logDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	build := exec.CommandContext(ctx, "go", "build", "-o", binDir+string(filepath.Separator), "./gateway", "./connector")
	build.Dir = s.cfg.RepoRoot
	if out, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("building gateway and connector: %w\n%s", err, out)
	}
	batch := s.cfg.ConnectorBatch
	if batch <= 0 {
		batch = 1
	}
	ttl := s.cfg.RouteTTL
	if ttl <= 0 {
		ttl = 30 * time.Second
	}
	base := append(os.Environ(), "INTERNAL_KEY="+s.cfg.InternalKey, "LOG_LEVEL=info", "GATEWAY_LOG_LEVEL=info")
	for i := range c.Connectors {
		addr, err := freeAddr()
		if err != nil {
			return err
		}
		p := &Proc{Name: "connector-" + strconv.Itoa(i), Addr: addr, path: "/readyz",
			bin: filepath.Join(binDir, "connector"), logPath: filepath.Join(logDir, "connector-"+strconv.Itoa(i)+".log"),
			env: append(append([]string(nil), base...),
				"KAFKA_BROKERS="+s.Brokers, "GATEWAY_URL="+s.FaasURL, "CONNECTOR_HTTP_ADDR="+addr,
				"BASIC_AUTH_USER="+s.cfg.FaasUser, "BASIC_AUTH_PASSWORD="+s.cfg.FaasPassword,
				"BATCH_MAX="+strconv.Itoa(batch),
				// A killed member's partitions move after the session
				// timeout; kfake's floor is 6 s.
				"KAFKA_SESSION_TIMEOUT=6s", "KAFKA_REBALANCE_TIMEOUT=6s")}
		if err := p.Start(ctx); err != nil {
			return err
		}
		s.connectorProcs = append(s.connectorProcs, p)
	}
	for i := range c.Gateways {
		pub, err := freeAddr()
		if err != nil {
			return err
		}
		internal, err := freeAddr()
		if err != nil {
			return err
		}
		name := "gateway-" + strconv.Itoa(i)
		env := append(append([]string(nil), base...),
			"GATEWAY_ADDR="+pub, "GATEWAY_INTERNAL_ADDR="+internal, "GATEWAY_INSTANCE_ID="+name,
			"FAAS_URL="+s.FaasURL, "REDIS_URL="+s.RedisURL, "JWT_SECRET="+s.cfg.JWTSecret,
			"GATEWAY_ROUTE_TTL="+ttl.String())
		env = append(env, s.S3Env()...)
		if s.cfg.AckMode != "" {
			env = append(env, "GATEWAY_ACK_MODE="+string(s.cfg.AckMode))
		}
		env = append(env, s.cfg.ClusterGatewayEnv...)
		p := &Proc{Name: name, Addr: pub, Internal: internal, path: "/readyz",
			bin: filepath.Join(binDir, "gateway"), logPath: filepath.Join(logDir, name+".log"), env: env}
		if err := p.Start(ctx); err != nil {
			return err
		}
		s.gatewayProcs = append(s.gatewayProcs, p)
	}
	s.closers = append(s.closers, func() {
		var wg sync.WaitGroup
		for _, p := range append(append([]*Proc(nil), s.gatewayProcs...), s.connectorProcs...) {
			wg.Add(1)
			go func() { defer wg.Done(); _ = p.Stop(20 * time.Second) }()
		}
		wg.Wait()
	})
	return nil
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("choosing a port: %w", err)
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// RestartRedis restarts the stack's Redis and loses its data, as a Redis
// without persistence does after a crash. The embedded one always can; an
// external one only on this machine and only when EASYCHAT_RESTART_REDIS=1
// says it may be shut down (CI's lane against the real Redis sets it).
func (s *Stack) RestartRedis(ctx context.Context) error {
	if s.redis != nil {
		return s.redis.Restart()
	}
	if os.Getenv("EASYCHAT_RESTART_REDIS") != "1" {
		return ErrRedisNotRestartable
	}
	u, err := url.Parse(s.RedisURL)
	if err != nil {
		return fmt.Errorf("parsing REDIS_URL: %w", err)
	}
	host, port, err := net.SplitHostPort(u.Host)
	if err != nil || (host != "127.0.0.1" && host != "localhost") {
		return fmt.Errorf("%w: %s is not a local Redis", ErrRedisNotRestartable, u.Host)
	}
	ping := func() bool {
		return exec.CommandContext(ctx, "redis-cli", "-h", host, "-p", port, "ping").Run() == nil
	}
	// SHUTDOWN closes the connection without an answer.
	_ = exec.CommandContext(ctx, "redis-cli", "-h", host, "-p", port, "shutdown", "nosave").Run()
	for deadline := time.Now().Add(10 * time.Second); ping(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			return errors.New("redis still answers after SHUTDOWN")
		}
	}
	dir, err := os.MkdirTemp("", "easychat-redis-")
	if err != nil {
		return err
	}
	start := exec.CommandContext(ctx, "redis-server", "--port", port, "--bind", host, "--save", "",
		"--appendonly", "no", "--daemonize", "yes", "--dir", dir, "--logfile", filepath.Join(dir, "redis.log"))
	if out, err := start.CombinedOutput(); err != nil {
		return fmt.Errorf("starting redis-server: %w\n%s", err, out)
	}
	for deadline := time.Now().Add(10 * time.Second); !ping(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			return errors.New("redis did not come back")
		}
	}
	return nil
}

// ErrRedisNotRestartable: the stack uses a Redis it may not restart.
var ErrRedisNotRestartable = errors.New("the stack's Redis is external; set EASYCHAT_RESTART_REDIS=1 to let it be restarted")
