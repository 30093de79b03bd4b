// Package process runs one function replica as an OS process in its own
// process group, so stopping it never leaves children behind.
package process

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// Spec describes a replica to start.
type Spec struct {
	// Function is the function name, attached to every log line.
	Function string
	Binary   string
	Dir      string
	// Env is the complete environment; nothing is inherited implicitly.
	Env []string
	// Port is the port the replica is told to listen on (it gets PORT=Port).
	Port   int
	Logger *slog.Logger
}

// Process is a running (or exited) replica.
type Process struct {
	Function  string
	PID       int
	Port      int
	StartedAt time.Time

	cmd  *exec.Cmd
	done chan struct{}
	err  error // set before done is closed
}

// Start launches the replica. Its stdout and stderr go to the logger line by line.
func Start(spec Spec) (*Process, error) {
	logger := spec.Logger
	if logger == nil {
		logger = slog.Default()
	}
	cmd := exec.Command(spec.Binary)
	cmd.Dir = spec.Dir
	cmd.Env = append(append([]string(nil), spec.Env...), "PORT="+strconv.Itoa(spec.Port))
	cmd.SysProcAttr = &syscall.SysProcAttr{
		// Own group: Stop signals the group, reaching anything the function forked.
		Setpgid: true,
		// If the runtime dies without Shutdown (crash, kill -9), take the replica with it.
		Pdeathsig: syscall.SIGKILL,
	}
	// A forked grandchild holding the output pipes must not block Wait forever.
	cmd.WaitDelay = 2 * time.Second

	p := &Process{Function: spec.Function, Port: spec.Port, cmd: cmd, done: make(chan struct{})}
	stdout := &lineLogger{logger: logger, attrs: []any{"function", spec.Function, "stream", "stdout"}}
	stderr := &lineLogger{logger: logger, attrs: []any{"function", spec.Function, "stream", "stderr"}}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s replica: %w", spec.Function, err)
	}
	p.PID = cmd.Process.Pid
	p.StartedAt = time.Now()
	stdout.setPID(p.PID)
	stderr.setPID(p.PID)
	go func() {
		p.err = cmd.Wait()
		stdout.flush()
		stderr.flush()
		close(p.done)
	}()
	return p, nil
}

// URL is where the replica serves.
func (p *Process) URL() url.URL {
	return url.URL{Scheme: "http", Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(p.Port))}
}

// Done is closed when the process has exited and been reaped.
func (p *Process) Done() <-chan struct{} { return p.done }

// Err is the exit status; valid after Done is closed.
func (p *Process) Err() error {
	select {
	case <-p.done:
		return p.err
	default:
		return nil
	}
}

var healthClient = &http.Client{
	Timeout:   time.Second,
	Transport: &http.Transport{DisableKeepAlives: true},
}

// WaitHealthy polls GET /_/health until it answers 200, the process exits, or
// ctx ends. The poll interval starts small: a Go replica is usually up in
// milliseconds and this is on the cold-start path.
func (p *Process) WaitHealthy(ctx context.Context) error {
	u := p.URL()
	u.Path = "/_/health"
	interval := 2 * time.Millisecond
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
		if err != nil {
			return fmt.Errorf("building health request: %w", err)
		}
		res, err := healthClient.Do(req)
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-p.done:
			return fmt.Errorf("replica %s (pid %d) exited before becoming healthy: %v", p.Function, p.PID, p.err)
		case <-ctx.Done():
			return fmt.Errorf("waiting for replica %s (pid %d) to become healthy: %w", p.Function, p.PID, ctx.Err())
		case <-time.After(interval):
		}
		if interval < 100*time.Millisecond {
			interval *= 2
		}
	}
}

// Stop sends SIGTERM to the process group, SIGKILL after grace, and returns
// once the replica is reaped. Members of the group that outlive the leader are
// killed too.
func (p *Process) Stop(grace time.Duration) error {
	pgid := p.PID
	select {
	case <-p.done:
	default:
		if err := syscall.Kill(-pgid, syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
			return fmt.Errorf("signalling %s (pgid %d): %w", p.Function, pgid, err)
		}
		t := time.NewTimer(grace)
		select {
		case <-p.done:
			t.Stop()
		case <-t.C:
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
			<-p.done
		}
	}
	// The group id cannot be reused while any member lives, so this only hits
	// leftovers of this replica.
	if err := syscall.Kill(-pgid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("killing leftovers of %s (pgid %d): %w", p.Function, pgid, err)
	}
	return nil
}

// Kill ends the group at once (shutdown deadline passed).
func (p *Process) Kill() {
	_ = syscall.Kill(-p.PID, syscall.SIGKILL)
}

// lineLogger turns a replica's output stream into one log record per line.
type lineLogger struct {
	logger *slog.Logger
	attrs  []any

	mu  sync.Mutex
	pid int
	buf []byte
}

const maxLine = 16 << 10

func (l *lineLogger) setPID(pid int) {
	l.mu.Lock()
	l.pid = pid
	l.mu.Unlock()
}

func (l *lineLogger) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf = append(l.buf, b...)
	for {
		i := bytes.IndexByte(l.buf, '\n')
		if i < 0 {
			if len(l.buf) > maxLine { // no newline in sight: log what we have
				l.emit(l.buf)
				l.buf = l.buf[:0]
			}
			return len(b), nil
		}
		l.emit(l.buf[:i])
		l.buf = l.buf[i+1:]
	}
}

func (l *lineLogger) flush() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.buf) > 0 {
		l.emit(l.buf)
		l.buf = nil
	}
}

func (l *lineLogger) emit(line []byte) {
	line = bytes.TrimRight(line, "\r")
	if len(line) == 0 {
		return
	}
	args := make([]any, 0, len(l.attrs)+2)
	args = append(append(args, l.attrs...), "pid", l.pid)
	l.logger.Info(string(line), args...)
}
