package provider_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"easychat/faas/build"
	"easychat/faas/provider"
)

const (
	password = "e2e-secret-password"
	// faasCLIVersion is the faas-cli pinned in tools/faas-cli.
	faasCLIVersion = "0.13.14"
)

// stackYAML declares the fixture function twice: echo (healthy) and broken
// (does not compile). Scale-to-zero is switched on by a later redeploy
// through faas-cli's own environment substitution.
const stackYAML = `version: 1.0
provider:
  name: openfaas
  gateway: %s
functions:
  echo:
    lang: golang-http
    handler: ./echo
    image: easychat/echo:test
    environment:
      GREETING: hello
    secrets:
      - echo-key
    labels:
      com.openfaas.scale.zero: ${ECHO_SCALE_ZERO:-false}
      com.openfaas.scale.zero-duration: 2s
  broken:
    lang: golang-http
    handler: ./broken
    image: easychat/broken:test
`

// ghostYAML is a function the runtime's stack files do not declare.
const ghostYAML = `version: 1.0
provider:
  name: openfaas
  gateway: %s
functions:
  ghost:
    lang: golang-http
    handler: ./ghost
    image: easychat/ghost:test
`

type env struct {
	t       *testing.T
	repo    string
	work    string
	cli     string
	url     string
	p       *provider.Provider
	logPath string
}

// TestRuntimeWithFaasCLI drives the real faas-cli against the runtime, with
// real function processes, covering deploy errors, secrets, invocation,
// scaling, crash restart, scale to zero, a 50-caller cold start and removal.
// The runtime is process-global (faas-provider's router), so this is one test.
func TestRuntimeWithFaasCLI(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs real processes")
	}
	e := setup(t)

	t.Run("login", func(t *testing.T) {
		out, err := e.faas(t, "wrong\n", nil, "login", "--gateway", e.url, "-u", "admin", "--password-stdin")
		if err == nil || !strings.Contains(out, "incorrect") {
			t.Fatalf("login with a wrong password: err=%v\n%s", err, out)
		}
		out, err = e.faas(t, password+"\n", nil, "login", "--gateway", e.url, "-u", "admin", "--password-stdin")
		if err != nil || !strings.Contains(out, "credentials saved for admin") {
			t.Fatalf("login: %v\n%s", err, out)
		}
	})

	t.Run("deploy fails without the declared secret", func(t *testing.T) {
		out, err := e.faas(t, "", nil, "deploy", "-f", "stack.yml", "--filter", "echo", "--gateway", e.url)
		if err == nil || !strings.Contains(out, `secret "echo-key" does not exist`) || !strings.Contains(out, "400") {
			t.Fatalf("want a 400 about the missing secret, err=%v\n%s", err, out)
		}
	})

	t.Run("secret create", func(t *testing.T) {
		out, err := e.faas(t, "", nil, "secret", "create", "echo-key", "--from-literal", "s3cr3t", "--gateway", e.url)
		if err != nil || !strings.Contains(out, "Created: 201 Created") {
			t.Fatalf("secret create: %v\n%s", err, out)
		}
		out, _ = e.faas(t, "", nil, "secret", "create", "echo-key", "--from-literal", "again", "--gateway", e.url)
		if !strings.Contains(out, "already exists") {
			t.Fatalf("duplicate secret accepted:\n%s", out)
		}
	})

	t.Run("deploy", func(t *testing.T) {
		out, err := e.faas(t, "", nil, "deploy", "-f", "stack.yml", "--filter", "echo", "--gateway", e.url)
		if err != nil || !strings.Contains(out, "Deployed. 202 Accepted.") {
			t.Fatalf("deploy: %v\n%s", err, out)
		}
	})

	t.Run("deploy errors reach faas-cli", func(t *testing.T) {
		out, err := e.faas(t, "", nil, "deploy", "-f", "ghost.yml", "--gateway", e.url)
		if err == nil || !strings.Contains(out, "400") || !strings.Contains(out, "not declared in any stack file") {
			t.Fatalf("unknown function: err=%v\n%s", err, out)
		}
		out, err = e.faas(t, "", nil, "deploy", "-f", "stack.yml", "--filter", "broken", "--gateway", e.url)
		if err == nil || !strings.Contains(out, "build of broken failed") || !strings.Contains(out, "undefined: nope") {
			t.Fatalf("compile error: err=%v\n%s", err, out)
		}
	})

	t.Run("list", func(t *testing.T) {
		out, err := e.faas(t, "", nil, "list", "--gateway", e.url)
		if err != nil {
			t.Fatalf("list: %v\n%s", err, out)
		}
		if got := listRow(out, "echo"); got != "echo 0 1" {
			t.Fatalf("list row for echo = %q\n%s", got, out)
		}
		if listRow(out, "broken") != "" {
			t.Fatalf("a function that failed to build is listed:\n%s", out)
		}
		out, err = e.faas(t, "", nil, "list", "--namespace", "openfaas-fn", "--gateway", e.url)
		if err != nil || listRow(out, "echo") != "echo 0 1" {
			t.Fatalf("list in openfaas-fn: %v\n%s", err, out)
		}
		out, err = e.faas(t, "", nil, "list", "--namespace", "team-a", "--gateway", e.url)
		if err == nil || !strings.Contains(out, `namespace "team-a" is not available`) {
			t.Fatalf("list in an unknown namespace: %v\n%s", err, out)
		}
	})

	t.Run("invoke", func(t *testing.T) {
		out, err := e.faas(t, "world", nil, "invoke", "echo", "--gateway", e.url)
		if err != nil || strings.TrimSpace(out) != "hello world" {
			t.Fatalf("invoke: %v\n%q", err, out)
		}
		out, err = e.faas(t, "ns", nil, "invoke", "echo", "--namespace", "openfaas-fn", "--gateway", e.url)
		if err != nil || strings.TrimSpace(out) != "hello ns" {
			t.Fatalf("invoke echo.openfaas-fn: %v\n%q", err, out)
		}
		// The secret is mounted for the function, and only the declared one.
		out, err = e.faas(t, "", nil, "invoke", "echo", "--query", "secret=echo-key", "--gateway", e.url)
		if err != nil || strings.TrimSpace(out) != "s3cr3t" {
			t.Fatalf("invoke reading the secret: %v\n%q", err, out)
		}
	})

	t.Run("describe", func(t *testing.T) {
		out, err := e.faas(t, "", nil, "describe", "echo", "--gateway", e.url)
		if err != nil {
			t.Fatalf("describe: %v\n%s", err, out)
		}
		for _, re := range []string{`Name:\s+echo\n`, `Status:\s+Ready\n`, `Replicas:\s+1\n`,
			`Available replicas:\s+1\n`, `Invocations:\s+3\n`, `Image:\s+easychat/echo:test\n`,
			`com.openfaas.scale.zero : false`} {
			if !regexp.MustCompile(re).MatchString(out) {
				t.Errorf("describe output lacks %s:\n%s", re, out)
			}
		}
	})

	t.Run("without scale.zero the idler leaves it up", func(t *testing.T) {
		// Wait until the idler itself has seen echo idle past its 2s
		// zero-duration, then check that it left it alone.
		age := `easychat_idler_last_invocation_age_seconds{function="echo"}`
		deadline := time.Now().Add(15 * time.Second)
		for e.metric(t, age) < 3 {
			if time.Now().After(deadline) {
				t.Fatalf("%s stayed at %v", age, e.metric(t, age))
			}
			time.Sleep(100 * time.Millisecond)
		}
		st, err := e.p.Function("echo")
		must(t, err)
		if st.Replicas != 1 || len(e.readyReplicas("echo")) != 1 {
			t.Fatalf("echo without com.openfaas.scale.zero=true was scaled: %+v", st)
		}
		if n := e.metric(t, `easychat_idler_scaled_to_zero_total{function="echo"}`); n != 0 {
			t.Fatalf("idler scaled echo down %v times", n)
		}
	})

	t.Run("scale and restart after a crash", func(t *testing.T) {
		e.api(t, http.MethodPost, "/system/scale-function/echo", `{"serviceName":"echo","replicas":2}`, http.StatusAccepted)
		reps := e.waitReady(t, "echo", 2)
		victim := reps[0].PID
		if err := syscall.Kill(victim, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(15 * time.Second)
		for {
			reps = e.readyReplicas("echo")
			if len(reps) == 2 && reps[0].PID != victim && reps[1].PID != victim {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("crashed replica not replaced: %+v", reps)
			}
			time.Sleep(20 * time.Millisecond)
		}
		assertGone(t, victim)
	})

	var pids []int
	t.Run("scale to zero", func(t *testing.T) {
		for _, r := range e.p.Replicas("echo") {
			pids = append(pids, r.PID)
		}
		// Redeploy with scale-to-zero on: an update with unchanged sources,
		// so the binary is reused, and the replicas are rolled.
		out, err := e.faas(t, "", []string{"ECHO_SCALE_ZERO=true"}, "deploy", "-f", "stack.yml", "--filter", "echo", "--gateway", e.url)
		if err != nil || !strings.Contains(out, "Deployed. 202 Accepted.") {
			t.Fatalf("redeploy: %v\n%s", err, out)
		}
		if n := e.metric(t, `easychat_faas_builds_total{function="echo",result="unchanged"}`); n < 1 {
			t.Errorf("redeploy with unchanged sources rebuilt the function")
		}
		deadline := time.Now().Add(20 * time.Second)
		for {
			for _, r := range e.p.Replicas("echo") {
				if !contains(pids, r.PID) {
					pids = append(pids, r.PID)
				}
			}
			st, err := e.p.Function("echo")
			if err != nil {
				t.Fatal(err)
			}
			if st.Replicas == 0 && len(e.p.Replicas("echo")) == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("echo not scaled to zero: %+v", st)
			}
			time.Sleep(50 * time.Millisecond)
		}
		waitNoChildren(t)
		for _, pid := range pids {
			assertGone(t, pid)
		}
		if n := e.metric(t, `easychat_idler_scaled_to_zero_total{function="echo"}`); n != 1 {
			t.Errorf("idler counted %v scale-downs of echo, want 1", n)
		}
		out, _ = e.faas(t, "", nil, "list", "--gateway", e.url)
		if got := listRow(out, "echo"); got != "echo 3 0" {
			t.Fatalf("list after scale to zero = %q\n%s", got, out)
		}
	})

	t.Run("50 callers share one cold start", func(t *testing.T) {
		coldBefore := e.metric(t, `easychat_faas_cold_starts_total{function="echo"}`)
		startsBefore := e.metric(t, `easychat_faas_replica_starts_total{function="echo"}`)

		const n = 50
		var wg sync.WaitGroup
		gate := make(chan struct{})
		errs := make(chan error, n)
		var mu sync.Mutex
		var first time.Duration
		start := time.Now()
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-gate
				body := fmt.Sprintf("msg-%d", i)
				res, err := http.Post(e.url+"/function/echo", "text/plain", strings.NewReader(body))
				if err != nil {
					errs <- err
					return
				}
				defer res.Body.Close()
				got, _ := io.ReadAll(res.Body)
				mu.Lock()
				if d := time.Since(start); first == 0 || d < first {
					first = d
				}
				mu.Unlock()
				if res.StatusCode != http.StatusOK || string(got) != "hello "+body {
					errs <- fmt.Errorf("caller %d: %d %q", i, res.StatusCode, got)
				}
			}()
		}
		start = time.Now()
		close(gate)
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		t.Logf("cold start: first of %d responses after %v, all after %v", n, first, time.Since(start))

		if d := e.metric(t, `easychat_faas_cold_starts_total{function="echo"}`) - coldBefore; d != 1 {
			t.Errorf("cold starts during the burst = %v, want 1", d)
		}
		if d := e.metric(t, `easychat_faas_replica_starts_total{function="echo"}`) - startsBefore; d != 1 {
			t.Errorf("replica processes started during the burst = %v, want 1", d)
		}
		if reps := e.p.Replicas("echo"); len(reps) != 1 {
			t.Errorf("replicas after the burst: %+v", reps)
		}
		out, _ := e.faas(t, "", nil, "list", "--gateway", e.url)
		if got := listRow(out, "echo"); got != "echo 53 1" {
			t.Errorf("list after the burst = %q\n%s", got, out)
		}
	})

	t.Run("remove", func(t *testing.T) {
		var live []int
		for _, r := range e.p.Replicas("echo") {
			live = append(live, r.PID)
		}
		out, err := e.faas(t, "", nil, "remove", "echo", "--gateway", e.url)
		if err != nil || !strings.Contains(out, "Removing old function.") {
			t.Fatalf("remove: %v\n%s", err, out)
		}
		for _, pid := range live {
			assertGone(t, pid)
		}
		waitNoChildren(t)
		out, _ = e.faas(t, "", nil, "list", "--gateway", e.url)
		if listRow(out, "echo") != "" {
			t.Fatalf("echo still listed after remove:\n%s", out)
		}
		res, err := http.Post(e.url+"/function/echo", "text/plain", strings.NewReader("x"))
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusNotFound {
			t.Fatalf("invoking a removed function: %d, want 404", res.StatusCode)
		}
	})
}

func setup(t *testing.T) *env {
	_, file, _, _ := runtime.Caller(0)
	repo := filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
	e := &env{t: t, repo: repo, work: t.TempDir()}
	e.cli = ensureFaasCLI(t, repo)

	must(t, build.CopyTree(filepath.Join(repo, "template"), filepath.Join(e.work, "template")))
	must(t, build.CopyTree(filepath.Join(repo, "faas", "testdata", "echo"), filepath.Join(e.work, "echo")))
	must(t, build.CopyTree(filepath.Join(repo, "faas", "testdata", "echo"), filepath.Join(e.work, "broken")))
	must(t, os.WriteFile(filepath.Join(e.work, "broken", "handler.go"), []byte(`package function

import handler "github.com/openfaas/templates-sdk/go-http"

func Handle(req handler.Request) (handler.Response, error) { return nope, nil }
`), 0o644))

	port := freePort(t)
	e.url = "http://127.0.0.1:" + strconv.Itoa(port)
	must(t, os.WriteFile(filepath.Join(e.work, "stack.yml"), fmt.Appendf(nil, stackYAML, e.url), 0o644))
	must(t, os.WriteFile(filepath.Join(e.work, "ghost.yml"), fmt.Appendf(nil, ghostYAML, e.url), 0o644))

	// Runtime and replica logs go to a file, shown if the test fails.
	e.logPath = filepath.Join(e.work, "runtime.log")
	logFile, err := os.Create(e.logPath)
	must(t, err)
	logger := slog.New(slog.NewTextHandler(logFile, &slog.HandlerOptions{Level: slog.LevelDebug}))
	log.SetOutput(logFile) // faas-provider's proxy logs every call with the log package
	t.Cleanup(func() {
		log.SetOutput(os.Stderr)
		logFile.Close()
		if t.Failed() {
			b, _ := os.ReadFile(e.logPath)
			lines := strings.Split(strings.TrimSpace(string(b)), "\n")
			if len(lines) > 80 {
				lines = lines[len(lines)-80:]
			}
			t.Logf("runtime log (last %d lines):\n%s", len(lines), strings.Join(lines, "\n"))
		}
	})

	p, err := provider.New(provider.Config{
		Port:              port,
		StateDir:          filepath.Join(e.work, "state"),
		StackFiles:        []string{filepath.Join(e.work, "stack.yml")},
		Password:          password,
		ColdStartTimeout:  30 * time.Second,
		IdleCheckInterval: 200 * time.Millisecond,
		StopGracePeriod:   5 * time.Second,
		Logger:            logger,
	})
	must(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	must(t, p.Start(ctx))
	e.p = p
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		p.Shutdown(ctx)
		waitNoChildren(t)
	})
	return e
}

// ensureFaasCLI returns <repo>/bin/faas-cli, building the pinned version if missing.
func ensureFaasCLI(t *testing.T, repo string) string {
	t.Helper()
	bin := filepath.Join(repo, "bin", "faas-cli")
	if _, err := os.Stat(bin); err == nil {
		return bin
	}
	cmd := exec.Command("go", "build", "-ldflags", "-X github.com/openfaas/faas-cli/version.Version="+faasCLIVersion,
		"-o", bin, "github.com/openfaas/faas-cli")
	cmd.Dir = filepath.Join(repo, "tools", "faas-cli")
	cmd.Env = append(os.Environ(), "GOWORK=off")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building faas-cli: %v\n%s", err, out)
	}
	return bin
}

// faas runs faas-cli in the work dir (it reads ./template for deploys) with
// its config kept in the work dir too.
func (e *env) faas(t *testing.T, stdin string, extraEnv []string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, e.cli, args...)
	cmd.Dir = e.work
	cmd.Env = append(os.Environ(), "HOME="+filepath.Join(e.work, "home"),
		"OPENFAAS_CONFIG="+filepath.Join(e.work, "home", ".openfaas"), "OPENFAAS_URL="+e.url)
	cmd.Env = append(cmd.Env, extraEnv...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func (e *env) api(t *testing.T, method, path, body string, want int) {
	t.Helper()
	req, err := http.NewRequest(method, e.url+path, strings.NewReader(body))
	must(t, err)
	req.SetBasicAuth("admin", password)
	res, err := http.DefaultClient.Do(req)
	must(t, err)
	defer res.Body.Close()
	if res.StatusCode != want {
		b, _ := io.ReadAll(res.Body)
		t.Fatalf("%s %s: %d %s, want %d", method, path, res.StatusCode, b, want)
	}
}

func (e *env) readyReplicas(name string) []provider.Replica {
	var out []provider.Replica
	for _, r := range e.p.Replicas(name) {
		if r.Ready {
			out = append(out, r)
		}
	}
	return out
}

func (e *env) waitReady(t *testing.T, name string, n int) []provider.Replica {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		reps := e.readyReplicas(name)
		if len(reps) == n && len(e.p.Replicas(name)) == n {
			return reps
		}
		if time.Now().After(deadline) {
			t.Fatalf("want %d ready replicas of %s, have %+v", n, name, e.p.Replicas(name))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// metric reads one sample from the runtime's /metrics (0 if absent).
func (e *env) metric(t *testing.T, series string) float64 {
	t.Helper()
	res, err := http.Get(e.url + "/metrics")
	must(t, err)
	defer res.Body.Close()
	sc := bufio.NewScanner(res.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			must(t, err)
			return f
		}
	}
	return 0
}

// listRow returns "name invocations replicas" from `faas-cli list` output.
func listRow(out, name string) string {
	for _, line := range strings.Split(out, "\n") {
		fields := strings.Fields(line)
		if len(fields) == 3 && fields[0] == name {
			return strings.Join(fields, " ")
		}
	}
	return ""
}

// assertGone checks that the replica and its process group no longer exist.
func assertGone(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		errPID := syscall.Kill(pid, 0)
		errGroup := syscall.Kill(-pid, 0)
		if errors.Is(errPID, syscall.ESRCH) && errors.Is(errGroup, syscall.ESRCH) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("pid %d still exists (kill pid: %v, kill group: %v)", pid, errPID, errGroup)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitNoChildren checks that this test process has no child processes left,
// not even unreaped zombies: every replica must have been stopped and waited for.
func waitNoChildren(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		kids := children()
		if len(kids) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("leftover child processes: %v", kids)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func children() []string {
	self := os.Getpid()
	entries, _ := os.ReadDir("/proc")
	var kids []string
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// Fields after the parenthesised command: state, ppid, ...
		i := bytes.LastIndexByte(stat, ')')
		fields := strings.Fields(string(stat[i+1:]))
		if len(fields) > 1 && fields[1] == strconv.Itoa(self) {
			kids = append(kids, fmt.Sprintf("%d(%s)", pid, fields[0]))
		}
	}
	return kids
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func contains(s []int, v int) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
