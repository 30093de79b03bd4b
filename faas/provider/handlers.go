package provider

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"

	"github.com/gorilla/mux"
	"github.com/openfaas/faas-provider/types"

	"easychat/faas/secrets"
)

const maxAPIBody = 1 << 20

func sortStatuses(s []types.FunctionStatus) {
	sort.Slice(s, func(i, j int) bool { return s[i].Name < s[j].Name })
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func (p *Provider) writeError(w http.ResponseWriter, r *http.Request, err error) {
	code := StatusCode(err)
	if code >= 500 {
		p.log.Error("API request failed", "method", r.Method, "path", r.URL.Path, "status", code, "err", err)
	} else {
		p.log.Info("API request rejected", "method", r.Method, "path", r.URL.Path, "status", code, "err", err)
	}
	http.Error(w, err.Error(), code)
}

func decodeBody(r *http.Request, v any) error {
	dec := json.NewDecoder(io.LimitReader(r.Body, maxAPIBody))
	if err := dec.Decode(v); err != nil {
		return withStatus(http.StatusBadRequest, fmt.Errorf("decoding request body: %w", err))
	}
	return nil
}

func (p *Provider) handleList(w http.ResponseWriter, r *http.Request) {
	if err := checkNamespace(r.URL.Query().Get("namespace")); err != nil {
		p.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, p.Functions())
}

func (p *Provider) handleDescribe(w http.ResponseWriter, r *http.Request) {
	if err := checkNamespace(r.URL.Query().Get("namespace")); err != nil {
		p.writeError(w, r, err)
		return
	}
	name, ok := trimNamespace(mux.Vars(r)["name"])
	if !ok {
		p.writeError(w, r, fmt.Errorf("%w: %s", ErrNotDeployed, mux.Vars(r)["name"]))
		return
	}
	st, err := p.Function(name)
	if err != nil {
		p.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, st)
}

// handleDeploy serves POST (create, or update if it exists: the dev stack
// may redeploy blindly) and PUT (update; 404 makes faas-cli fall back to POST).
func (p *Provider) handleDeploy(update bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var req types.FunctionDeployment
		if err := decodeBody(r, &req); err != nil {
			p.writeError(w, r, err)
			return
		}
		// Not the request's context: faas-cli gives up after 60s, and a cold
		// build can take longer. Finishing it anyway means the retry is instant.
		if err := p.deploy(p.ctx, req, update); err != nil {
			p.writeError(w, r, err)
			return
		}
		w.WriteHeader(http.StatusAccepted)
	}
}

func (p *Provider) handleDelete(w http.ResponseWriter, r *http.Request) {
	if err := checkNamespace(r.URL.Query().Get("namespace")); err != nil {
		p.writeError(w, r, err)
		return
	}
	var req types.DeleteFunctionRequest
	if err := decodeBody(r, &req); err != nil {
		p.writeError(w, r, err)
		return
	}
	if req.FunctionName == "" {
		p.writeError(w, r, withStatus(http.StatusBadRequest, errors.New("functionName is required")))
		return
	}
	if err := p.Remove(r.Context(), req.FunctionName); err != nil {
		p.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusOK)
}

func (p *Provider) handleScale(w http.ResponseWriter, r *http.Request) {
	if err := checkNamespace(r.URL.Query().Get("namespace")); err != nil {
		p.writeError(w, r, err)
		return
	}
	var req types.ScaleServiceRequest
	if err := decodeBody(r, &req); err != nil {
		p.writeError(w, r, err)
		return
	}
	name, ok := trimNamespace(mux.Vars(r)["name"])
	if !ok {
		p.writeError(w, r, fmt.Errorf("%w: %s", ErrNotDeployed, mux.Vars(r)["name"]))
		return
	}
	if err := p.Scale(name, int(req.Replicas)); err != nil {
		p.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusAccepted)
}

func (p *Provider) handleSecrets(w http.ResponseWriter, r *http.Request) {
	if err := checkNamespace(r.URL.Query().Get("namespace")); err != nil {
		p.writeError(w, r, err)
		return
	}
	if r.Method == http.MethodGet {
		names, err := p.secrets.List()
		if err != nil {
			p.writeError(w, r, err)
			return
		}
		out := make([]types.Secret, 0, len(names))
		for _, n := range names {
			out = append(out, types.Secret{Name: n, Namespace: Namespace})
		}
		writeJSON(w, http.StatusOK, out)
		return
	}

	var s types.Secret
	if err := decodeBody(r, &s); err != nil {
		p.writeError(w, r, err)
		return
	}
	if err := checkNamespace(s.Namespace); err != nil {
		p.writeError(w, r, err)
		return
	}
	if err := secrets.ValidateName(s.Name); err != nil {
		p.writeError(w, r, withStatus(http.StatusBadRequest, err))
		return
	}
	value := s.RawValue
	if len(value) == 0 {
		value = []byte(s.Value)
	}

	var err error
	code := http.StatusOK
	switch r.Method {
	case http.MethodPost:
		err, code = p.secrets.Create(s.Name, value), http.StatusCreated
	case http.MethodPut:
		if err = p.secrets.Update(s.Name, value); err == nil {
			err = p.refreshSecret(s.Name)
		}
	case http.MethodDelete:
		err = p.secrets.Delete(s.Name)
	default:
		err = withStatus(http.StatusMethodNotAllowed, fmt.Errorf("method %s not allowed", r.Method))
	}
	switch {
	case errors.Is(err, secrets.ErrExists):
		p.writeError(w, r, withStatus(http.StatusConflict, err))
	case errors.Is(err, secrets.ErrNotFound):
		p.writeError(w, r, withStatus(http.StatusNotFound, err))
	case err != nil:
		p.writeError(w, r, err)
	default:
		p.log.Info("secret changed", "secret", s.Name, "method", r.Method)
		w.WriteHeader(code)
	}
}

// refreshSecret pushes an updated value into the folders of the functions
// that declared it, as a Kubernetes secret volume would be refreshed.
func (p *Provider) refreshSecret(name string) error {
	p.mu.Lock()
	var dirs []string
	for _, f := range p.functions {
		dirs = append(dirs, f.secretDir)
	}
	p.mu.Unlock()
	for _, d := range dirs {
		if err := p.secrets.Refresh(d, name); err != nil {
			return err
		}
	}
	return nil
}

func (p *Provider) handleLogs(w http.ResponseWriter, _ *http.Request) {
	http.Error(w, "function logs are not kept by this runtime: they are in the runtime's own log output, tagged with the function name", http.StatusNotImplemented)
}

func (p *Provider) handleInfo(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, types.ProviderInfo{Name: "faas-local", Orchestration: "process", Version: version()})
}

func (p *Provider) handleHealth(w http.ResponseWriter, _ *http.Request) {
	w.WriteHeader(http.StatusOK)
	_, _ = io.WriteString(w, "OK")
}

func (p *Provider) handleNamespaces(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, []string{Namespace})
}

// invocationHandler wraps the faas-provider proxy: it rejects unknown
// functions with 404, waits for a ready replica with the caller's context
// (a scale from zero happens here), and records invocation count and time
// for `faas-cli list` and the idler.
func (p *Provider) invocationHandler(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		raw := mux.Vars(r)["name"]
		name, ok := trimNamespace(raw)
		p.mu.Lock()
		f := p.functions[name]
		p.mu.Unlock()
		if !ok || f == nil {
			http.Error(w, fmt.Sprintf("function %q is not deployed", raw), http.StatusNotFound)
			return
		}
		// Counted as it starts, so the idler sees a call that is still
		// running as activity.
		f.invocations.Add(1)

		ctx, cancel := context.WithTimeout(r.Context(), p.cfg.ColdStartTimeout)
		_, err := p.await(ctx, name, false)
		cancel()
		if err != nil {
			code := StatusCode(err)
			if code == http.StatusInternalServerError {
				code = http.StatusServiceUnavailable
			}
			p.log.Warn("invocation not routed", "function", name, "status", code, "err", err)
			http.Error(w, err.Error(), code)
			return
		}
		next(w, r)
	}
}
