package build

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"easychat/faas/stackfile"
)

// Builder builds functions one at a time: builds are CPU-bound and the
// machines this runs on have few cores, so parallel builds only add latency.
type Builder struct {
	// ContextDir holds one build context per function (<ContextDir>/<name>).
	ContextDir string
	// BinDir receives the binaries (<BinDir>/<name>) and their input hashes.
	BinDir      string
	TemplateDir string
	Logger      *slog.Logger
	// GoCommand is the go tool to run; empty means "go" from PATH.
	GoCommand string

	sem chan struct{}
}

// Result describes a finished build.
type Result struct {
	Binary string
	// Skipped is true when the inputs were unchanged and the binary was reused.
	Skipped  bool
	Duration time.Duration
}

// Error is a failed compilation: the function's fault, not the runtime's.
type Error struct {
	Function string
	// Tail is the end of the compiler output, enough to show the first errors
	// to whoever ran faas-cli deploy.
	Tail string
	Err  error
}

func (e *Error) Error() string {
	return fmt.Sprintf("build of %s failed: %v\n%s", e.Function, e.Err, e.Tail)
}

func (e *Error) Unwrap() error { return e.Err }

// New returns a Builder; dirs are created on first use.
func New(contextDir, binDir, templateDir string, logger *slog.Logger) *Builder {
	if logger == nil {
		logger = slog.Default()
	}
	return &Builder{
		ContextDir:  contextDir,
		BinDir:      binDir,
		TemplateDir: templateDir,
		Logger:      logger,
		sem:         make(chan struct{}, 1),
	}
}

// Build assembles fn's context and compiles it, unless nothing changed since
// the last successful build. Builds are serialized; waiting honours ctx.
func (b *Builder) Build(ctx context.Context, fn stackfile.Function) (Result, error) {
	select {
	case b.sem <- struct{}{}:
	case <-ctx.Done():
		return Result{}, fmt.Errorf("waiting for the build queue: %w", ctx.Err())
	}
	defer func() { <-b.sem }()

	start := time.Now()
	goCmd, err := b.goCommand()
	if err != nil {
		return Result{}, err
	}
	bin := filepath.Join(b.BinDir, fn.Name)
	hashFile := bin + ".inputs"

	toolStamp := goCmd
	if st, err := os.Stat(goCmd); err == nil {
		toolStamp = fmt.Sprintf("%s %d %d", goCmd, st.Size(), st.ModTime().UnixNano())
	}
	hash, err := InputsHash(fn, b.TemplateDir, toolStamp)
	if err != nil {
		return Result{}, fmt.Errorf("fingerprinting %s: %w", fn.Name, err)
	}
	if prev, err := os.ReadFile(hashFile); err == nil && string(prev) == hash {
		if _, err := os.Stat(bin); err == nil {
			b.Logger.Info("function unchanged, reusing binary", "function", fn.Name, "binary", bin)
			return Result{Binary: bin, Skipped: true, Duration: time.Since(start)}, nil
		}
	}

	dir := filepath.Join(b.ContextDir, fn.Name)
	if err := Assemble(fn, b.TemplateDir, dir); err != nil {
		return Result{}, fmt.Errorf("assembling build context of %s: %w", fn.Name, err)
	}
	if err := os.MkdirAll(b.BinDir, 0o755); err != nil {
		return Result{}, fmt.Errorf("creating bin dir: %w", err)
	}

	// Build next to the target and rename: replicas of the previous version may
	// still be running the old file, which cannot be overwritten in place.
	tmp := filepath.Join(b.BinDir, "."+fn.Name+".new")
	out, err := b.goBuild(ctx, goCmd, dir, tmp)
	if err != nil {
		_ = os.Remove(tmp)
		b.Logger.Error("function build failed", "function", fn.Name, "dir", dir, "err", err, "output", out)
		if ctx.Err() != nil {
			return Result{}, fmt.Errorf("building %s: %w", fn.Name, ctx.Err())
		}
		var exitErr *exec.ExitError
		if errors.As(err, &exitErr) {
			return Result{}, &Error{Function: fn.Name, Tail: tail(out, 40, 4096), Err: err}
		}
		return Result{}, fmt.Errorf("running go build for %s: %w", fn.Name, err)
	}
	if out != "" {
		b.Logger.Info("function build output", "function", fn.Name, "output", out)
	}
	if err := os.Rename(tmp, bin); err != nil {
		return Result{}, fmt.Errorf("installing binary of %s: %w", fn.Name, err)
	}
	if err := os.WriteFile(hashFile, []byte(hash), 0o644); err != nil {
		return Result{}, fmt.Errorf("recording inputs of %s: %w", fn.Name, err)
	}
	d := time.Since(start)
	b.Logger.Info("function built", "function", fn.Name, "binary", bin, "seconds", d.Seconds())
	return Result{Binary: bin, Duration: d}, nil
}

// goBuild mirrors the template Dockerfile's build step (CGO off, -trimpath).
func (b *Builder) goBuild(ctx context.Context, goCmd, dir, out string) (string, error) {
	cmd := exec.CommandContext(ctx, goCmd, "build", "-trimpath", "-o", out, ".")
	cmd.Dir = dir
	// The context's own go.work must win over any workspace above the state dir
	// (or in the caller's GOWORK); without one, build the context module alone.
	work := "off"
	if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil {
		work = filepath.Join(dir, "go.work")
	}
	cmd.Env = append(os.Environ(), "GOWORK="+work, "CGO_ENABLED=0")
	// go build forks compilers: cancel the whole group, not just the go tool.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	var buf limitedBuffer
	buf.max = 64 << 10
	cmd.Stdout = &buf
	cmd.Stderr = &buf
	err := cmd.Run()
	return strings.TrimSpace(buf.String()), err
}

func (b *Builder) goCommand() (string, error) {
	name := b.GoCommand
	if name == "" {
		name = "go"
	}
	p, err := exec.LookPath(name)
	if err != nil {
		return "", fmt.Errorf("finding the go tool to build functions: %w", err)
	}
	return p, nil
}

// limitedBuffer keeps the last max bytes written: the end of a compiler log
// is where the summary is, and a runaway log must not eat memory.
type limitedBuffer struct {
	max int
	b   []byte
}

func (l *limitedBuffer) Write(p []byte) (int, error) {
	l.b = append(l.b, p...)
	if len(l.b) > l.max {
		l.b = append(l.b[:0], l.b[len(l.b)-l.max:]...)
	}
	return len(p), nil
}

func (l *limitedBuffer) String() string { return string(l.b) }

// tail returns at most maxLines lines and maxBytes bytes from the end of s.
func tail(s string, maxLines, maxBytes int) string {
	if len(s) > maxBytes {
		s = s[len(s)-maxBytes:]
	}
	lines := strings.Split(s, "\n")
	if len(lines) > maxLines {
		lines = lines[len(lines)-maxLines:]
	}
	return strings.Join(lines, "\n")
}
