package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Processes the bench starts beside the stack: a gateway of its own (so its
// memory is measured without the load generator's) and Centrifugo.

type proc struct {
	name string
	cmd  *exec.Cmd
	out  *tail
	done chan struct{}
}

// tail keeps the last lines a process wrote, for error messages.
type tail struct {
	mu  sync.Mutex
	buf []byte
}

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > 8192 {
		t.buf = t.buf[len(t.buf)-8192:]
	}
	return len(p), nil
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.TrimSpace(string(t.buf))
}

func startProc(name, bin string, args, env []string, dir string) (*proc, error) {
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	cmd.Dir = dir
	t := &tail{}
	cmd.Stdout, cmd.Stderr = t, t
	// Never outlive the bench.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, out: t, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

func (p *proc) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(20 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// waitHTTP polls url until it answers 200 or the process exits.
func (p *proc) waitHTTP(url string, max time.Duration) error {
	deadline := time.Now().Add(max)
	c := &http.Client{Timeout: time.Second}
	for time.Now().Before(deadline) {
		select {
		case <-p.done:
			return fmt.Errorf("%s exited: %s", p.name, p.out)
		default:
		}
		if res, err := c.Get(url); err == nil {
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("%s did not answer %s within %v: %s", p.name, url, max, p.out)
}

// rss is the process's resident set size in bytes (VmRSS).
func rss(pid int) (uint64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, err := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("no VmRSS in /proc/%d/status", pid)
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// gatewayProc is a gateway started from a freshly built binary, sharing the
// stack's Redis, FaaS runtime and keys.
type gatewayProc struct {
	*proc
	addr, internal string
}

func (g *gatewayProc) url() string { return "ws://" + g.addr + "/ws" }

func (sys *system) gatewayBinary(ctx context.Context) (string, error) {
	bin := filepath.Join(sys.tmp, "gateway")
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./gateway")
	cmd.Dir = sys.root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building the gateway: %w\n%s", err, out)
	}
	return bin, nil
}

func (sys *system) startGateway(ctx context.Context) (*gatewayProc, error) {
	bin, err := sys.gatewayBinary(ctx)
	if err != nil {
		return nil, err
	}
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	internal, err := freeAddr()
	if err != nil {
		return nil, err
	}
	env := []string{
		"PATH=" + os.Getenv("PATH"),
		"GATEWAY_ADDR=" + addr,
		"GATEWAY_INTERNAL_ADDR=" + internal,
		"REDIS_URL=" + sys.stack.RedisURL,
		"FAAS_URL=" + sys.stack.FaasURL,
		"JWT_SECRET=" + sys.stack.JWTSecret(),
		"INTERNAL_KEY=" + sys.stack.InternalKey(),
		"GATEWAY_LOG_LEVEL=warn",
		// The load generator is one address standing for many clients: its
		// handshakes in flight (64 at a time) must not meet the per-address bound.
		"GATEWAY_MAX_PENDING_PER_IP=1024",
		// No secret files: the keys above are the ones in use.
		"SECRET_MOUNT_PATH=" + filepath.Join(sys.tmp, "no-secrets"),
	}
	env = append(env, sys.stack.S3Env()...)
	p, err := startProc("gateway", bin, nil, env, sys.tmp)
	if err != nil {
		return nil, err
	}
	g := &gatewayProc{proc: p, addr: addr, internal: internal}
	if err := p.waitHTTP("http://"+addr+"/readyz", 30*time.Second); err != nil {
		p.stop()
		return nil, err
	}
	return g, nil
}

// metric reads one unlabelled sample from a Prometheus text endpoint.
func metric(url, name string) (float64, error) {
	res, err := http.Get(url)
	if err != nil {
		return 0, err
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	for _, line := range bytes.Split(b, []byte("\n")) {
		if v, ok := bytes.CutPrefix(line, []byte(name+" ")); ok {
			return strconv.ParseFloat(string(bytes.TrimSpace(v)), 64)
		}
	}
	return 0, fmt.Errorf("no %s at %s", name, url)
}

// procCPU is a process's user+system CPU time so far (0 if unknown).
func procCPU(pid int) time.Duration {
	if pid <= 0 {
		return 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// Fields after the command name (which may contain spaces).
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseUint(f[11], 10, 64)
	st, _ := strconv.ParseUint(f[12], 10, 64)
	const ticks = 100 // USER_HZ on Linux
	return time.Duration(ut+st) * time.Second / ticks
}
