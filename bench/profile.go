package main

import (
	"context"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/pprof"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/openfaas/faas-provider/types"
)

// Profiling the function processes: with -profile-dir the bench redeploys
// chat and transfer with PPROF_ADDR (the template then serves net/http/pprof
// there) and saves a CPU profile of each during every single-chat step.

var fnPprof = map[string]string{} // function → pprof address

func (sys *system) enableFunctionPprof(ctx context.Context, fns ...string) error {
	p := sys.stack.Provider
	for _, fn := range fns {
		st, err := p.Function(fn)
		if err != nil {
			return err
		}
		addr, err := freeAddr()
		if err != nil {
			return err
		}
		env := maps.Clone(st.EnvVars)
		if env == nil {
			env = map[string]string{}
		}
		env["PPROF_ADDR"] = addr
		spec := types.FunctionDeployment{
			Service: st.Name, Image: st.Image, EnvProcess: st.EnvProcess, EnvVars: env,
			Constraints: st.Constraints, Secrets: st.Secrets, Labels: st.Labels, Annotations: st.Annotations,
			Limits: st.Limits, Requests: st.Requests, ReadOnlyRootFilesystem: st.ReadOnlyRootFilesystem,
		}
		if err := p.Deploy(ctx, spec); err != nil {
			return fmt.Errorf("redeploying %s with PPROF_ADDR: %w", fn, err)
		}
		// The update replaces the replica once the new one is ready.
		deadline := time.Now().Add(time.Minute)
		for {
			if res, err := http.Get("http://" + addr + "/debug/pprof/"); err == nil {
				res.Body.Close()
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("%s: no pprof listener on %s", fn, addr)
			}
			time.Sleep(100 * time.Millisecond)
		}
		fnPprof[fn] = addr
		progress("%s replica serves pprof on %s", fn, addr)
	}
	time.Sleep(2 * time.Second) // old replicas stopped
	return nil
}

// captureFunctionProfiles saves dur-long CPU profiles of every profiled
// function as <profile-dir>/<function>-<tag>.pprof.
func (sys *system) captureFunctionProfiles(wg *sync.WaitGroup, tag string, dur time.Duration) {
	for fn, addr := range fnPprof {
		wg.Go(func() {
			url := fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", addr, int(dur.Seconds()))
			res, err := http.Get(url)
			if err != nil {
				progress("profiling %s: %v", fn, err)
				return
			}
			defer res.Body.Close()
			f, err := os.Create(filepath.Join(sys.set.profileDir, fmt.Sprintf("%s-%s.pprof", fn, tag)))
			if err != nil {
				progress("profiling %s: %v", fn, err)
				return
			}
			defer f.Close()
			_, _ = io.Copy(f, res.Body)
		})
	}
}

// servePprof serves this process's profiles (-pprof).
func servePprof(addr string) {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	if err := http.ListenAndServe(addr, mux); err != nil {
		progress("pprof listener: %v", err)
	}
}
