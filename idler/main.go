// Command idler scales OpenFaaS functions labelled com.openfaas.scale.zero
// to zero replicas once idle for com.openfaas.scale.zero-duration (see
// package idle). It lists functions through the OpenFaaS REST API and scales
// them through it (IDLER_SCALER=openfaas) or, on faas-netes with OpenFaaS CE,
// through the Kubernetes API (IDLER_SCALER=kubernetes).
//
// Environment (defaults in brackets):
//
//	OPENFAAS_URL            OpenFaaS gateway      (http://gateway.openfaas:8080)
//	basic-auth-user         secret file, or env BASIC_AUTH_USER      (admin)
//	basic-auth-password     secret file, or env BASIC_AUTH_PASSWORD  (required)
//	IDLER_SCALER            openfaas | kubernetes                    (openfaas)
//	FUNCTION_NAMESPACE      functions' namespace (openfaas-fn with kubernetes; else the provider's default)
//	IDLER_INTERVAL          time between checks                      (30s)
//	IDLER_DEFAULT_DURATION  zero-duration of functions without one   (15m)
//	IDLER_HTTP_ADDR         /healthz /readyz /metrics                (:8098)
//	LOG_LEVEL               debug | info | warn | error              (info)
//
// It stops on SIGTERM or SIGINT.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"easychat/idler/idle"
	"easychat/pkg/envconf"
	"easychat/pkg/logging"
	"easychat/pkg/secret"
)

func main() {
	logger, err := logging.JSON("LOG_LEVEL")
	if err != nil {
		slog.Error("idler cannot start", "err", err)
		os.Exit(2)
	}
	slog.SetDefault(logger)
	if err := run(logger); err != nil {
		logger.Error("idler stopped", "err", err)
		os.Exit(1)
	}
}

func run(logger *slog.Logger) error {
	var r envconf.Reader
	interval := r.Duration("IDLER_INTERVAL", 30*time.Second)
	def := r.Duration("IDLER_DEFAULT_DURATION", idle.DefaultZeroDuration)
	scalerName := r.String("IDLER_SCALER", "openfaas")
	addr := r.String("IDLER_HTTP_ADDR", ":8098")
	api := &idle.OpenFaaS{
		URL:       r.String("OPENFAAS_URL", "http://gateway.openfaas:8080"),
		User:      secret.Read("basic-auth-user", "BASIC_AUTH_USER", "admin"),
		Password:  secret.Read("basic-auth-password", "BASIC_AUTH_PASSWORD", ""),
		Namespace: r.String("FUNCTION_NAMESPACE", ""),
	}
	if err := r.Err(); err != nil {
		return err
	}
	if api.Password == "" {
		return errors.New("no OpenFaaS password: mount the basic-auth-password secret or set BASIC_AUTH_PASSWORD")
	}
	var scaler idle.Scaler = api
	switch scalerName {
	case "openfaas":
	case "kubernetes":
		k, err := idle.InCluster(or(api.Namespace, "openfaas-fn"))
		if err != nil {
			return err
		}
		scaler = k
	default:
		return fmt.Errorf("IDLER_SCALER=%q: want openfaas or kubernetes", scalerName)
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(prometheus.NewGoCollector(), prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}))
	d := idle.New(idle.Config{Lister: api, Scaler: scaler, Interval: interval, DefaultDuration: def,
		Metrics: idle.NewMetrics(reg), Logger: logger})

	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) })
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !d.Ready() {
			http.Error(w, "functions not listed yet", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ok"))
	})
	srv := &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	srvErr := make(chan error, 1)
	go func() { srvErr <- srv.ListenAndServe() }()

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	logger.Info("idler started", "openfaas", api.URL, "interval", interval, "default_duration", def, "addr", srv.Addr)
	done := make(chan struct{})
	go func() { d.Run(ctx); close(done) }()
	select {
	case <-ctx.Done():
	case err := <-srvErr:
		stop()
		<-done
		return fmt.Errorf("serving %s: %w", srv.Addr, err)
	}
	<-done
	shutCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	logger.Info("idler stopping")
	return srv.Shutdown(shutCtx)
}

func or(v, def string) string {
	if v != "" {
		return v
	}
	return def
}
