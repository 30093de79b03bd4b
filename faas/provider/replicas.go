package provider

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/openfaas/faas-provider/types"

	"easychat/faas/process"
	"easychat/faas/stackfile"
	"easychat/idler/idle"
)

// OpenFaaS scaling labels honoured by the runtime.
const (
	LabelScaleMin          = "com.openfaas.scale.min"
	LabelScaleMax          = "com.openfaas.scale.max"
	LabelScaleZeroDuration = idle.LabelZeroDuration
)

// ErrNotDeployed is returned for a function name the runtime does not know.
var ErrNotDeployed = errors.New("function is not deployed")

var errShuttingDown = errors.New("faas runtime is shutting down")

// A replica that lived this long before exiting is not part of a crash loop.
const stableUptime = 30 * time.Second

type scalePolicy struct {
	min int
	max int // 0: no upper bound
}

func parseScalePolicy(labels map[string]string) (scalePolicy, error) {
	sp := scalePolicy{min: 1}
	if v, ok := labels[LabelScaleMin]; ok {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || n < 0 {
			return sp, fmt.Errorf("label %s=%q: want a non-negative integer", LabelScaleMin, v)
		}
		sp.min = n
	}
	if v, ok := labels[LabelScaleMax]; ok {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || n < 0 {
			return sp, fmt.Errorf("label %s=%q: want a non-negative integer", LabelScaleMax, v)
		}
		sp.max = n
	}
	// The idler (package idle) reads the zero-duration; a bad one is refused
	// at deploy rather than leaving the function up without a word.
	if v, ok := labels[LabelScaleZeroDuration]; ok && strings.TrimSpace(v) != "" {
		d, err := time.ParseDuration(strings.TrimSpace(v))
		if err != nil || d <= 0 {
			return sp, fmt.Errorf("label %s=%q: want a positive Go duration such as 15m", LabelScaleZeroDuration, v)
		}
	}
	return sp, nil
}

// capped applies scale.max to a requested replica count.
func (sp scalePolicy) capped(n int) int {
	if sp.max > 0 && n > sp.max {
		return sp.max
	}
	return n
}

// function is one deployed function. Fields without atomics are guarded by Provider.mu.
type function struct {
	name      string
	spec      types.FunctionDeployment // Labels and Annotations never nil
	source    stackfile.Function
	binary    string
	secretDir string
	createdAt time.Time
	gen       int // bumped by each update; older replicas are replaced
	scale     scalePolicy

	desired  int
	replicas []*replica // started, not being stopped (any generation)
	rr       uint64
	changed  chan struct{} // closed and replaced whenever replicas change
	removed  bool

	failures  int   // failed starts so far, lets waiters give up early
	lastErr   error // why the last start failed
	crashes   int   // consecutive failures, drives the restart backoff
	restartAt time.Time
	retry     *time.Timer
	coldStart time.Time // when a scale from zero was triggered, until a replica is ready

	invocations atomic.Uint64 // calls started, for the idler and `faas-cli list`
}

type replica struct {
	proc     *process.Process
	gen      int
	ready    bool
	stopping bool
}

func newFunction(name string) *function {
	return &function{name: name, changed: make(chan struct{}), createdAt: time.Now()}
}

// broadcastLocked wakes everyone waiting for a replica state change.
func (f *function) broadcastLocked() {
	close(f.changed)
	f.changed = make(chan struct{})
}

func (f *function) readyCount() int {
	n := 0
	for _, r := range f.replicas {
		if r.ready {
			n++
		}
	}
	return n
}

// pickLocked round-robins over ready replicas.
func (f *function) pickLocked() (*replica, bool) {
	n := f.readyCount()
	if n == 0 {
		return nil, false
	}
	i := int(f.rr % uint64(n))
	f.rr++
	for _, r := range f.replicas {
		if !r.ready {
			continue
		}
		if i == 0 {
			return r, true
		}
		i--
	}
	return nil, false
}

func (f *function) removeLocked(r *replica) {
	for i, x := range f.replicas {
		if x == r {
			f.replicas = append(f.replicas[:i], f.replicas[i+1:]...)
			return
		}
	}
}

func (f *function) stopAllLocked(p *Provider) {
	if f.retry != nil {
		f.retry.Stop()
		f.retry = nil
	}
	for len(f.replicas) > 0 {
		p.stopReplicaLocked(f, f.replicas[0])
	}
	f.broadcastLocked()
}

func (f *function) statusLocked() types.FunctionStatus {
	labels := copyMap(*f.spec.Labels)
	annotations := copyMap(*f.spec.Annotations)
	return types.FunctionStatus{
		Name:                   f.name,
		Image:                  f.spec.Image,
		Namespace:              Namespace,
		EnvProcess:             f.spec.EnvProcess,
		EnvVars:                copyMap(f.spec.EnvVars),
		Constraints:            append([]string(nil), f.spec.Constraints...),
		Secrets:                append([]string(nil), f.spec.Secrets...),
		Labels:                 &labels,
		Annotations:            &annotations,
		Limits:                 f.spec.Limits,
		Requests:               f.spec.Requests,
		ReadOnlyRootFilesystem: f.spec.ReadOnlyRootFilesystem,
		InvocationCount:        float64(f.invocations.Load()),
		Replicas:               uint64(f.desired),
		AvailableReplicas:      uint64(f.readyCount()),
		CreatedAt:              f.createdAt,
	}
}

func copyMap(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// replicaEnv is the whole environment of a replica: a few variables a Go
// program needs from the runtime's own environment, then the function's
// envVars, then what the runtime decides (the function cannot override it).
func (p *Provider) replicaEnv(f *function) []string {
	var env []string
	for _, k := range []string{"PATH", "HOME", "TMPDIR", "GOCOVERDIR"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	keys := make([]string, 0, len(f.spec.EnvVars))
	for k := range f.spec.EnvVars {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		env = append(env, k+"="+f.spec.EnvVars[k])
	}
	return append(env, "SECRET_MOUNT_PATH="+f.secretDir)
}

// reconcileLocked moves the function's replicas toward desired: starts or
// stops current-generation replicas, and retires older generations once
// enough new ones are ready (a rolling update without a gap).
func (p *Provider) reconcileLocked(f *function) {
	if p.closed || f.removed {
		return
	}
	var cur, stale []*replica
	for _, r := range f.replicas {
		if r.gen == f.gen {
			cur = append(cur, r)
		} else {
			stale = append(stale, r)
		}
	}
	for len(cur) > f.desired {
		// Prefer a replica that is not serving yet, else the newest.
		victim := len(cur) - 1
		for i, r := range cur {
			if !r.ready {
				victim = i
				break
			}
		}
		p.stopReplicaLocked(f, cur[victim])
		cur = append(cur[:victim], cur[victim+1:]...)
	}
	if missing := f.desired - len(cur); missing > 0 {
		if wait := time.Until(f.restartAt); wait > 0 {
			if f.retry == nil {
				f.retry = time.AfterFunc(wait, func() {
					p.mu.Lock()
					defer p.mu.Unlock()
					f.retry = nil
					p.reconcileLocked(f)
				})
			}
		} else {
			for range missing {
				p.startReplicaLocked(f)
			}
		}
	}
	readyCur := 0
	for _, r := range f.replicas {
		if r.gen == f.gen && r.ready {
			readyCur++
		}
	}
	if readyCur >= f.desired {
		for _, r := range stale {
			p.stopReplicaLocked(f, r)
		}
	}
	p.metrics.observeReplicas(f)
}

func (p *Provider) startReplicaLocked(f *function) {
	port, err := process.FreePort()
	if err == nil {
		var proc *process.Process
		proc, err = process.Start(process.Spec{
			Function: f.name,
			Binary:   f.binary,
			Dir:      filepath.Dir(f.binary), // like the container, where the handler binary sits
			Env:      p.replicaEnv(f),
			Port:     port,
			Logger:   p.log,
		})
		if err == nil {
			r := &replica{proc: proc, gen: f.gen}
			f.replicas = append(f.replicas, r)
			p.live[r] = struct{}{}
			p.metrics.replicaStarts.WithLabelValues(f.name).Inc()
			p.log.Info("replica started", "function", f.name, "pid", proc.PID, "port", port)
			p.wg.Add(1)
			go p.supervise(f, r)
			return
		}
	}
	p.startFailedLocked(f, fmt.Errorf("starting a replica of %s: %w", f.name, err))
}

// startFailedLocked records a failed start and delays the next attempt.
func (p *Provider) startFailedLocked(f *function, err error) {
	p.log.Error("replica failed to start", "function", f.name, "err", err)
	f.failures++
	f.lastErr = err
	f.crashes++
	f.restartAt = time.Now().Add(backoff(f.crashes))
	f.broadcastLocked()
}

// awaitStartAttempts is how many failed starts a waiting caller sits
// through before it gets an error (backoff keeps that under a second).
const awaitStartAttempts = 3

// backoff: restart at once after a single failure, then 100ms doubling to 10s.
func backoff(crashes int) time.Duration {
	if crashes <= 1 {
		return 0
	}
	d := 100 * time.Millisecond << min(crashes-2, 7)
	return min(d, 10*time.Second)
}

// stopReplicaLocked takes r out of rotation at once and stops it in the background.
func (p *Provider) stopReplicaLocked(f *function, r *replica) {
	if r.stopping {
		return
	}
	r.stopping = true
	r.ready = false
	f.removeLocked(r)
	f.broadcastLocked()
	p.metrics.observeReplicas(f)
	p.log.Info("stopping replica", "function", f.name, "pid", r.proc.PID)
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		if err := r.proc.Stop(p.cfg.StopGracePeriod); err != nil {
			p.log.Error("stopping replica", "function", f.name, "pid", r.proc.PID, "err", err)
		}
	}()
}

// supervise health-checks a new replica, puts it in rotation, and restarts
// it if it exits while still wanted.
func (p *Provider) supervise(f *function, r *replica) {
	defer p.wg.Done()
	ctx, cancel := context.WithTimeout(p.ctx, p.cfg.ColdStartTimeout)
	err := r.proc.WaitHealthy(ctx)
	cancel()

	p.mu.Lock()
	switch {
	case r.stopping:
	case err != nil:
		p.stopReplicaLocked(f, r)
		p.startFailedLocked(f, err)
		p.reconcileLocked(f)
	default:
		r.ready = true
		msg := []any{"function", f.name, "pid", r.proc.PID, "port", r.proc.Port,
			"startup_seconds", time.Since(r.proc.StartedAt).Seconds()}
		if !f.coldStart.IsZero() {
			d := time.Since(f.coldStart)
			p.metrics.coldStartSeconds.WithLabelValues(f.name).Observe(d.Seconds())
			msg = append(msg, "cold_start_seconds", d.Seconds())
			f.coldStart = time.Time{}
		}
		p.log.Info("replica ready", msg...)
		f.broadcastLocked()
		p.reconcileLocked(f)
	}
	p.mu.Unlock()

	<-r.proc.Done()

	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.live, r)
	if r.stopping {
		p.log.Info("replica stopped", "function", f.name, "pid", r.proc.PID)
		return
	}
	uptime := time.Since(r.proc.StartedAt)
	p.log.Warn("replica exited unexpectedly", "function", f.name, "pid", r.proc.PID,
		"err", r.proc.Err(), "uptime_seconds", uptime.Seconds())
	p.metrics.replicaCrashes.WithLabelValues(f.name).Inc()
	r.stopping = true
	f.removeLocked(r)
	if uptime > stableUptime {
		f.crashes = 0
	}
	f.crashes++
	f.restartAt = time.Now().Add(backoff(f.crashes))
	f.broadcastLocked()
	p.reconcileLocked(f)
}

// await blocks until fn has a ready replica, scaling it from zero if needed.
// Concurrent callers share one start: the first sets desired, the rest see a
// replica starting and wait for the same broadcast. With pick it returns a
// replica's URL (advancing the round robin); without, it only waits.
func (p *Provider) await(ctx context.Context, name string, pick bool) (url.URL, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	f := p.functions[name]
	if f == nil {
		return url.URL{}, fmt.Errorf("%w: %s", ErrNotDeployed, name)
	}
	failures := f.failures
	for {
		if p.closed {
			return url.URL{}, errShuttingDown
		}
		if f.removed {
			return url.URL{}, fmt.Errorf("%w: %s", ErrNotDeployed, name)
		}
		if f.readyCount() > 0 {
			if !pick {
				return url.URL{}, nil
			}
			r, _ := f.pickLocked()
			return r.proc.URL(), nil
		}
		if f.desired == 0 {
			f.desired = f.scale.capped(max(1, f.scale.min))
			f.coldStart = time.Now()
			p.metrics.coldStarts.WithLabelValues(name).Inc()
			p.log.Info("scaling from zero", "function", name, "replicas", f.desired)
			p.reconcileLocked(f)
			continue
		}
		// One failed start can be bad luck (a port taken between probe and
		// bind); give up only when the function keeps failing.
		if f.failures-failures >= awaitStartAttempts {
			return url.URL{}, fmt.Errorf("no replica of %s became ready after %d starts: %w",
				name, awaitStartAttempts, f.lastErr)
		}
		ch := f.changed
		p.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			p.mu.Lock()
			return url.URL{}, fmt.Errorf("waiting for a ready replica of %s: %w", name, ctx.Err())
		}
		p.mu.Lock()
	}
}

// Resolve implements proxy.BaseURLResolver. It gets no request context, so
// the wait for a cold start is bounded by ColdStartTimeout; the invocation
// handler has normally waited already with the caller's context.
func (p *Provider) Resolve(name string) (url.URL, error) {
	name, ok := trimNamespace(name)
	if !ok {
		return url.URL{}, fmt.Errorf("%w: %s", ErrNotDeployed, name)
	}
	ctx, cancel := context.WithTimeout(p.ctx, p.cfg.ColdStartTimeout)
	defer cancel()
	return p.await(ctx, name, true)
}

// trimNamespace accepts "name" and "name.openfaas-fn", as faas-cli sends both.
func trimNamespace(name string) (string, bool) {
	if base, ns, found := strings.Cut(name, "."); found {
		return base, ns == Namespace
	}
	return name, true
}

// idleLoop runs the idler (package idle) against this runtime's own REST
// API, as it runs against any OpenFaaS provider: one implementation of scale
// to zero. Scale from zero stays here, in the invocation handler.
func (p *Provider) idleLoop() {
	api := &idle.OpenFaaS{URL: p.url, User: p.cfg.User, Password: p.cfg.Password}
	idle.New(idle.Config{
		Lister:   api,
		Scaler:   api,
		Interval: p.cfg.IdleCheckInterval,
		Metrics:  p.metrics.idle,
		Logger:   p.log,
	}).Run(p.ctx)
}

// Replica describes a running replica, for the dev stack and tests.
type Replica struct {
	PID       int
	Port      int
	Ready     bool
	StartedAt time.Time
}

// Replicas lists a function's replicas that are not being stopped.
func (p *Provider) Replicas(name string) []Replica {
	p.mu.Lock()
	defer p.mu.Unlock()
	f := p.functions[name]
	if f == nil {
		return nil
	}
	out := make([]Replica, 0, len(f.replicas))
	for _, r := range f.replicas {
		out = append(out, Replica{PID: r.proc.PID, Port: r.proc.Port, Ready: r.ready, StartedAt: r.proc.StartedAt})
	}
	return out
}
