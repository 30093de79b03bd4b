// Package idle scales OpenFaaS functions down to zero replicas after a
// period without invocations: the half of scale to zero that OpenFaaS CE
// does not ship (its gateway already scales a function back up when a call
// arrives for it, with scale_from_zero).
//
// A function takes part when it carries the label com.openfaas.scale.zero
// "true"; com.openfaas.scale.zero-duration (a Go duration, e.g. 15m) says how
// long it must be idle. Idleness is read from the invocation counts the
// OpenFaaS API reports: a function is idle from the last check at which its
// count changed, or at which it came up from zero replicas.
package idle

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"
)

// The OpenFaaS labels that opt a function in.
const (
	LabelZero         = "com.openfaas.scale.zero"
	LabelZeroDuration = "com.openfaas.scale.zero-duration"
)

// DefaultZeroDuration applies when a function opts in without a duration.
const DefaultZeroDuration = 15 * time.Minute

// Function is what the idler needs to know of a deployed function.
type Function struct {
	Name        string
	Replicas    uint64
	Invocations float64
	Labels      map[string]string
}

// Lister lists the deployed functions.
type Lister interface {
	Functions(ctx context.Context) ([]Function, error)
}

// Scaler sets a function's replica count.
type Scaler interface {
	Scale(ctx context.Context, name string, replicas uint64) error
}

// Config configures an Idler.
type Config struct {
	Lister Lister
	Scaler Scaler
	// Interval between checks; a function goes to zero at most one
	// Interval after its zero-duration has passed.
	Interval time.Duration
	// DefaultDuration for functions without a zero-duration label
	// (DefaultZeroDuration when zero).
	DefaultDuration time.Duration
	Metrics         *Metrics // nil: none
	Logger          *slog.Logger
}

// Idler watches the functions and scales idle ones to zero.
type Idler struct {
	cfg Config
	log *slog.Logger

	mu    sync.Mutex
	seen  map[string]*watch
	ready bool // one check has listed the functions
}

type watch struct {
	invocations float64
	replicas    uint64
	activeAt    time.Time // last change of the count, or scale-up from zero
	badLabel    string    // the zero-duration already reported as invalid
}

// New returns an Idler; Run starts it.
func New(cfg Config) *Idler {
	if cfg.Interval <= 0 {
		cfg.Interval = 30 * time.Second
	}
	if cfg.DefaultDuration <= 0 {
		cfg.DefaultDuration = DefaultZeroDuration
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Idler{cfg: cfg, log: cfg.Logger, seen: map[string]*watch{}}
}

// Run checks every Interval until ctx ends. A failed check is logged and
// retried at the next tick.
func (d *Idler) Run(ctx context.Context) {
	t := time.NewTicker(d.cfg.Interval)
	defer t.Stop()
	for {
		if err := d.Check(ctx, time.Now()); err != nil && ctx.Err() == nil {
			d.log.Warn("idle check failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Ready reports whether a check has listed the functions at least once.
func (d *Idler) Ready() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.ready
}

// Check lists the functions once and scales down those idle past their
// zero-duration at now.
func (d *Idler) Check(ctx context.Context, now time.Time) error {
	fns, err := d.cfg.Lister.Functions(ctx)
	if err != nil {
		d.cfg.Metrics.failed("list")
		return fmt.Errorf("listing functions: %w", err)
	}
	d.mu.Lock()
	d.ready = true
	type dueFn struct {
		name string
		idle time.Duration
	}
	var due []dueFn
	present := make(map[string]bool, len(fns))
	for _, f := range fns {
		present[f.Name] = true
		w := d.seen[f.Name]
		if w == nil {
			// A function first seen (or an idler just started) counts as
			// active now: the idler cannot know how long it was idle before.
			w = &watch{invocations: f.Invocations, replicas: f.Replicas, activeAt: now}
			d.seen[f.Name] = w
		}
		if f.Invocations != w.invocations || (w.replicas == 0 && f.Replicas > 0) {
			w.activeAt = now
		}
		w.invocations, w.replicas = f.Invocations, f.Replicas
		d.cfg.Metrics.idleFor(f.Name, now.Sub(w.activeAt))

		after, ok := d.policy(f, w)
		if idle := now.Sub(w.activeAt); ok && f.Replicas > 0 && idle >= after {
			due = append(due, dueFn{f.Name, idle})
		}
	}
	for name := range d.seen {
		if !present[name] {
			delete(d.seen, name)
			d.cfg.Metrics.forget(name)
		}
	}
	d.mu.Unlock()

	var firstErr error
	for _, f := range due {
		if err := d.cfg.Scaler.Scale(ctx, f.name, 0); err != nil {
			d.cfg.Metrics.failed("scale")
			if firstErr == nil {
				firstErr = fmt.Errorf("scaling %s to zero: %w", f.name, err)
			}
			continue
		}
		d.cfg.Metrics.scaledDown(f.name)
		d.log.Info("scaled to zero", "function", f.name, "idle_seconds", f.idle.Seconds())
		d.mu.Lock()
		if w := d.seen[f.name]; w != nil {
			w.replicas = 0
		}
		d.mu.Unlock()
	}
	return firstErr
}

// policy returns a function's zero-duration, and false when it has not
// opted in or its label is invalid (reported once: scaling a function down
// on a guess would be worse than leaving it up).
func (d *Idler) policy(f Function, w *watch) (time.Duration, bool) {
	if strings.TrimSpace(f.Labels[LabelZero]) != "true" {
		return 0, false
	}
	v := strings.TrimSpace(f.Labels[LabelZeroDuration])
	if v == "" {
		return d.cfg.DefaultDuration, true
	}
	after, err := time.ParseDuration(v)
	if err != nil || after <= 0 {
		if w.badLabel != v {
			w.badLabel = v
			d.log.Warn("function not scaled to zero: invalid label", "function", f.Name,
				"label", LabelZeroDuration, "value", v, "want", "a positive Go duration such as 15m")
		}
		return 0, false
	}
	return after, true
}
