// Command handler serves one OpenFaaS function over HTTP. It listens on PORT
// (default 8082, the of-watchdog upstream in the container; the local runtime
// gives each replica its own port) and answers /_/health for readiness probes.
//
// PPROF_ADDR (unset by default), e.g. 127.0.0.1:6061, serves net/http/pprof on
// that address, apart from the function's port, for profiling a replica.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	handler "github.com/openfaas/templates-sdk/go-http"

	function "handler/function"
)

func main() {
	port := envInt("PORT", 8082)
	execTimeout := envDuration("exec_timeout", 30*time.Second)
	maxBody := int64(envInt("max_body_bytes", 4<<20))

	mux := http.NewServeMux()
	mux.HandleFunc("/_/health", func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusOK)
		_, _ = io.WriteString(w, "OK")
	})
	mux.HandleFunc("/", makeRequestHandler(execTimeout, maxBody))

	srv := &http.Server{
		Addr:              fmt.Sprintf(":%d", port),
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		WriteTimeout:      execTimeout + 5*time.Second,
	}

	if addr := os.Getenv("PPROF_ADDR"); addr != "" {
		go servePprof(addr)
	}

	// The lock file is the readiness marker faas-netes' exec probe looks for.
	_ = os.WriteFile(lockFile(), nil, 0o600)

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	slog.Info("function listening", "port", port)

	select {
	case err := <-errc:
		if !errors.Is(err, http.ErrServerClosed) {
			slog.Error("function server failed", "err", err)
			os.Exit(1)
		}
	case <-ctx.Done():
		// Finish in-flight invocations, as the watchdog does on SIGTERM.
		shutdownCtx, cancel := context.WithTimeout(context.Background(), execTimeout)
		defer cancel()
		_ = os.Remove(lockFile())
		if err := srv.Shutdown(shutdownCtx); err != nil {
			slog.Error("function shutdown", "err", err)
		}
	}
}

func makeRequestHandler(timeout time.Duration, maxBody int64) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var body []byte
		if r.Body != nil {
			defer r.Body.Close()
			b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
			if err != nil {
				http.Error(w, "request body: "+err.Error(), http.StatusRequestEntityTooLarge)
				return
			}
			body = b
		}

		ctx, cancel := context.WithTimeout(r.Context(), timeout)
		defer cancel()

		req := handler.Request{
			Body:        body,
			Header:      r.Header,
			Method:      r.Method,
			QueryString: r.URL.RawQuery,
			Host:        r.Host,
		}
		req.WithContext(ctx)

		res, err := function.Handle(req)
		if err != nil {
			slog.Error("function error", "err", err)
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		for k, vs := range res.Header {
			for _, v := range vs {
				w.Header().Add(k, v)
			}
		}
		status := res.StatusCode
		if status == 0 {
			status = http.StatusOK
		}
		w.WriteHeader(status)
		_, _ = w.Write(res.Body)
	}
}

// servePprof serves the runtime profiles on their own listener.
func servePprof(addr string) {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	slog.Info("pprof listening", "addr", addr)
	if err := http.ListenAndServe(addr, mux); err != nil {
		slog.Error("pprof listener failed", "addr", addr, "err", err)
	}
}

func lockFile() string { return os.TempDir() + "/.lock" }

func envInt(key string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(key)); err == nil && v > 0 {
		return v
	}
	return def
}

func envDuration(key string, def time.Duration) time.Duration {
	if v, err := time.ParseDuration(os.Getenv(key)); err == nil && v > 0 {
		return v
	}
	return def
}
