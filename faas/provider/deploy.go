package provider

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"time"

	"github.com/openfaas/faas-provider/types"

	"easychat/faas/build"
	"easychat/faas/secrets"
	"easychat/faas/stackfile"
)

// requestError carries the HTTP status a failure should be reported with.
type requestError struct {
	code int
	err  error
}

func (e *requestError) Error() string { return e.err.Error() }
func (e *requestError) Unwrap() error { return e.err }

func withStatus(code int, err error) error { return &requestError{code: code, err: err} }

// StatusCode maps an error from Deploy, Remove or Scale to an HTTP status.
func StatusCode(err error) int {
	var re *requestError
	switch {
	case errors.As(err, &re):
		return re.code
	case errors.Is(err, ErrNotDeployed):
		return http.StatusNotFound
	case errors.Is(err, errShuttingDown):
		return http.StatusServiceUnavailable
	default:
		return http.StatusInternalServerError
	}
}

// Function names become file names and URL path segments: keep them to a
// DNS label (what Kubernetes would accept), plus '_' which faas-cli allows.
var validFunctionName = regexp.MustCompile(`^[a-zA-Z0-9]([-a-zA-Z0-9_]{0,61}[a-zA-Z0-9])?$`)

func checkNamespace(ns string) error {
	if ns != "" && ns != Namespace {
		return withStatus(http.StatusBadRequest, fmt.Errorf("namespace %q is not available: this runtime only has %q", ns, Namespace))
	}
	return nil
}

// Deploy creates or updates a function: it finds the function's source in the
// stack files, checks its secrets, builds it (errors come back with the
// compiler output), then starts com.openfaas.scale.min replicas. On update,
// new replicas replace the old ones once they are ready.
func (p *Provider) Deploy(ctx context.Context, req types.FunctionDeployment) error {
	return p.deploy(ctx, req, false)
}

func (p *Provider) deploy(ctx context.Context, req types.FunctionDeployment, mustExist bool) error {
	name := req.Service
	spec, policy, err := checkDeployment(req)
	if err != nil {
		return err
	}

	p.deployMu.Lock()
	defer p.deployMu.Unlock()

	p.mu.Lock()
	closed, exists := p.closed, p.functions[name] != nil
	p.mu.Unlock()
	if closed {
		return errShuttingDown
	}
	if mustExist && !exists {
		return fmt.Errorf("%w: %s", ErrNotDeployed, name)
	}

	if len(p.cfg.StackFiles) == 0 {
		return withStatus(http.StatusBadRequest, errors.New("the runtime has no stack files to find function sources in"))
	}
	stack, err := stackfile.Parse(p.cfg.StackFiles)
	if err != nil {
		return fmt.Errorf("deploying %s: %w", name, err)
	}
	src, err := stack.Lookup(name, req.Image)
	if err != nil {
		return withStatus(http.StatusBadRequest, fmt.Errorf("deploying %s: %w", name, err))
	}
	for _, s := range req.Secrets {
		if !p.secrets.Exists(s) {
			return withStatus(http.StatusBadRequest, fmt.Errorf(
				"deploying %s: secret %q does not exist; create it first (faas-cli secret create %s)", name, s, s))
		}
	}

	res, err := p.buildCounted(ctx, name, src)
	if err != nil {
		return err
	}

	secretDir := filepath.Join(p.cfg.StateDir, "secrets-fn", name)
	if err := p.secrets.Materialize(secretDir, req.Secrets); err != nil {
		if errors.Is(err, secrets.ErrNotFound) {
			return withStatus(http.StatusBadRequest, fmt.Errorf("deploying %s: %w", name, err))
		}
		return fmt.Errorf("deploying %s: %w", name, err)
	}

	return p.install(spec, policy, src, res.Binary, secretDir, !res.Skipped)
}

// install makes a built function the deployed one and reconciles its
// replicas (a redeploy rolls them).
func (p *Provider) install(spec types.FunctionDeployment, policy scalePolicy, src stackfile.Function, binary, secretDir string, rebuilt bool) error {
	name := spec.Service
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return errShuttingDown
	}
	f := p.functions[name]
	created := f == nil
	if created {
		f = newFunction(name)
		p.functions[name] = f
	}
	f.spec = spec
	f.source = src
	f.binary = binary
	f.secretDir = secretDir
	f.scale = policy
	f.gen++
	f.desired = policy.capped(policy.min)
	f.crashes, f.restartAt, f.coldStart = 0, time.Time{}, time.Time{}
	if f.retry != nil {
		f.retry.Stop()
		f.retry = nil
	}
	p.reconcileLocked(f)
	p.log.Info("function deployed", "function", name, "created", created, "image", spec.Image,
		"replicas", f.desired, "source", src.Handler, "rebuilt", rebuilt)
	return nil
}

// checkDeployment validates a deployment request and returns the spec to
// keep (the runtime's namespace, copies of its maps) and its scale policy.
func checkDeployment(req types.FunctionDeployment) (types.FunctionDeployment, scalePolicy, error) {
	name := req.Service
	if !validFunctionName.MatchString(name) {
		return req, scalePolicy{}, withStatus(http.StatusBadRequest, fmt.Errorf("invalid function name %q", name))
	}
	if err := checkNamespace(req.Namespace); err != nil {
		return req, scalePolicy{}, err
	}
	labels := map[string]string{}
	if req.Labels != nil && *req.Labels != nil {
		labels = copyMap(*req.Labels)
	}
	annotations := map[string]string{}
	if req.Annotations != nil && *req.Annotations != nil {
		annotations = copyMap(*req.Annotations)
	}
	policy, err := parseScalePolicy(labels)
	if err != nil {
		return req, scalePolicy{}, withStatus(http.StatusBadRequest, fmt.Errorf("deploying %s: %w", name, err))
	}
	for _, s := range req.Secrets {
		if err := secrets.ValidateName(s); err != nil {
			return req, scalePolicy{}, withStatus(http.StatusBadRequest, fmt.Errorf("deploying %s: %w", name, err))
		}
	}
	spec := req
	spec.Namespace = Namespace
	spec.Labels = &labels
	spec.Annotations = &annotations
	spec.EnvVars = copyMap(req.EnvVars)
	spec.Secrets = append([]string(nil), req.Secrets...)
	return spec, policy, nil
}

// buildCounted is build with its outcome counted: a compile error is the
// caller's (400), anything else the runtime's.
func (p *Provider) buildCounted(ctx context.Context, name string, src stackfile.Function) (build.Result, error) {
	res, err := p.build(ctx, src)
	var buildErr *build.Error
	switch {
	case errors.As(err, &buildErr):
		p.metrics.builds.WithLabelValues(name, "failed").Inc()
		return res, withStatus(http.StatusBadRequest, err)
	case err != nil:
		p.metrics.builds.WithLabelValues(name, "failed").Inc()
		return res, err
	case res.Skipped:
		p.metrics.builds.WithLabelValues(name, "unchanged").Inc()
	default:
		p.metrics.builds.WithLabelValues(name, "built").Inc()
		p.metrics.buildSeconds.WithLabelValues(name).Observe(res.Duration.Seconds())
	}
	return res, nil
}

// build compiles src. The build itself outlives ctx (until Shutdown): a
// client that gives up on a slow cold build, e.g. faas-cli's fixed 60 s,
// finds the binary cached when it tries again.
func (p *Provider) build(ctx context.Context, src stackfile.Function) (build.Result, error) {
	type outcome struct {
		res build.Result
		err error
	}
	done := make(chan outcome, 1)
	go func() {
		res, err := p.builder.Build(p.ctx, src)
		done <- outcome{res, err}
	}()
	select {
	case o := <-done:
		return o.res, o.err
	case <-ctx.Done():
		p.log.Warn("deploy request ended while building; the build goes on", "function", src.Name)
		return build.Result{}, fmt.Errorf("building %s: %w", src.Name, ctx.Err())
	}
}

// Prebuild compiles every function of the stack files that is not built
// yet, so deploys that follow only start processes. It returns the build
// errors, joined.
func (p *Provider) Prebuild(ctx context.Context) error {
	stack, err := stackfile.Parse(p.cfg.StackFiles)
	if err != nil {
		return fmt.Errorf("prebuilding: %w", err)
	}
	var errs []error
	seen := map[string]bool{}
	for _, fn := range stack.Functions {
		if seen[fn.Name] { // Lookup serves the first declaration
			continue
		}
		seen[fn.Name] = true
		start := time.Now()
		res, err := p.build(ctx, fn)
		if err != nil {
			errs = append(errs, err)
			if ctx.Err() != nil {
				break
			}
			continue
		}
		p.log.Info("function prebuilt", "function", fn.Name, "reused", res.Skipped, "seconds", time.Since(start).Seconds())
	}
	return errors.Join(errs...)
}

// Remove stops every replica of the function and forgets it; it returns once
// the processes are gone or ctx ends.
func (p *Provider) Remove(ctx context.Context, name string) error {
	p.deployMu.Lock()
	defer p.deployMu.Unlock()

	p.mu.Lock()
	f := p.functions[name]
	if f == nil {
		p.mu.Unlock()
		return fmt.Errorf("%w: %s", ErrNotDeployed, name)
	}
	procs := make([]*replica, len(f.replicas))
	copy(procs, f.replicas)
	f.removed = true
	f.stopAllLocked(p)
	delete(p.functions, name)
	p.metrics.forget(name)
	secretDir := f.secretDir
	p.mu.Unlock()

	for _, r := range procs {
		select {
		case <-r.proc.Done():
		case <-ctx.Done():
			return fmt.Errorf("waiting for replicas of %s to stop: %w", name, ctx.Err())
		}
	}
	if err := os.RemoveAll(secretDir); err != nil {
		return fmt.Errorf("removing secrets of %s: %w", name, err)
	}
	p.log.Info("function removed", "function", name)
	return nil
}

// Scale sets the wanted replica count (0 allowed; capped by com.openfaas.scale.max).
func (p *Provider) Scale(name string, replicas int) error {
	if replicas < 0 {
		return withStatus(http.StatusBadRequest, fmt.Errorf("replicas must not be negative, got %d", replicas))
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return errShuttingDown
	}
	f := p.functions[name]
	if f == nil {
		return fmt.Errorf("%w: %s", ErrNotDeployed, name)
	}
	n := f.scale.capped(replicas)
	if n == 0 {
		f.coldStart = time.Time{}
	}
	f.desired = n
	f.crashes, f.restartAt = 0, time.Time{}
	p.log.Info("scaling", "function", name, "replicas", n)
	p.reconcileLocked(f)
	return nil
}

// Functions returns the status of every deployed function, sorted by name.
func (p *Provider) Functions() []types.FunctionStatus {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]types.FunctionStatus, 0, len(p.functions))
	for _, f := range p.functions {
		out = append(out, f.statusLocked())
	}
	sortStatuses(out)
	return out
}

// Function returns one function's status.
func (p *Provider) Function(name string) (types.FunctionStatus, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	f := p.functions[name]
	if f == nil {
		return types.FunctionStatus{}, fmt.Errorf("%w: %s", ErrNotDeployed, name)
	}
	return f.statusLocked(), nil
}
