// Command devstack runs the whole of Easy Chat on one machine with embedded
// defaults: `make run` (or `go run ./devstack` from the repo root).
//
// Environment, with defaults:
//
//	EASYCHAT_STATE_DIR       .state                 data of embedded servers, builds, generated secrets
//	KAFKA_BROKERS            (embedded kfake)       use a real Kafka instead
//	MONGO_URI                (embedded FerretDB)    use a real MongoDB instead
//	FERRETDB_POSTGRESQL_URL  (SQLite)               embedded FerretDB stores in PostgreSQL instead
//	REDIS_URL                (embedded)             use a real Redis instead
//	S3_ENDPOINT              (embedded gofakes3)    use a real S3-compatible store (host:port) instead, with
//	                                                S3_ACCESS_KEY, S3_SECRET_KEY, S3_BUCKET [easychat],
//	                                                S3_REGION [us-east-1], S3_SECURE [false]
//	EMBEDDED_KAFKA_ADDR      127.0.0.1:9092
//	EMBEDDED_MONGO_ADDR      127.0.0.1:27017
//	EMBEDDED_REDIS_ADDR      127.0.0.1:6390         (not 6379, so a local Redis can keep its port)
//	EMBEDDED_S3_ADDR         127.0.0.1:9000
//	FAAS_PORT                8080                   local FaaS runtime (OpenFaaS API)
//	FAAS_USER                admin
//	FAAS_PASSWORD            generated into $EASYCHAT_STATE_DIR/faas-password
//	GATEWAY_ADDR             :10090                 websocket endpoint ws://host:10090/ws
//	GATEWAY_INTERNAL_ADDR    127.0.0.1:10091        push endpoint and gateway metrics
//	GATEWAY_ACK_MODE         only                   none | only | rigor
//	CONNECTOR_HTTP_ADDR      127.0.0.1:8099         connector metrics and health
//	BATCH_MAX                256                    records per transfer invocation (a busy partition's backlog, at most)
//	JWT_SECRET               generated into $EASYCHAT_STATE_DIR/jwt-secret
//	INTERNAL_KEY             generated into $EASYCHAT_STATE_DIR/internal-key
//	DEMO_USERS               alice,bob              users to print ready-made tokens for
//	LOG_LEVEL                info                   debug | info | warn | error
//	CLUSTER                  (off)                  1: a deployment's shape on one machine: 3 gateway and
//	                                                2 connector processes, chat and transfer at 3 replicas
//	                                                (ports chosen freely and printed; logs in $EASYCHAT_STATE_DIR/logs)
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"easychat/devstack/stack"
	"easychat/gateway/session"
	"easychat/pkg/envconf"
	"easychat/pkg/ident"
	"easychat/pkg/logging"
	"easychat/pkg/token"
)

func main() {
	level, err := logging.Level("LOG_LEVEL")
	if err != nil {
		fatal(err)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	slog.SetDefault(log)
	// faas-provider and connector-sdk log every call through the standard
	// logger; keep that at debug level.
	slog.SetLogLoggerLevel(slog.LevelDebug)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	root, err := os.Getwd()
	if err != nil {
		fatal(err)
	}
	if _, err := os.Stat("stack.yml"); err != nil {
		fatal(fmt.Errorf("run from the repository root (no stack.yml here): %w", err))
	}
	var r envconf.Reader
	faasPort := r.Int("FAAS_PORT", 8080, 0)
	batch := r.Int("BATCH_MAX", 256, 1)
	if err := r.Err(); err != nil {
		fatal(err)
	}
	cfg := stack.Config{
		RepoRoot:            root,
		StateDir:            env("EASYCHAT_STATE_DIR", ".state"),
		KafkaBrokers:        os.Getenv("KAFKA_BROKERS"),
		MongoURI:            os.Getenv("MONGO_URI"),
		FerretPGURL:         os.Getenv("FERRETDB_POSTGRESQL_URL"),
		RedisURL:            os.Getenv("REDIS_URL"),
		KafkaAddr:           env("EMBEDDED_KAFKA_ADDR", "127.0.0.1:9092"),
		MongoAddr:           env("EMBEDDED_MONGO_ADDR", "127.0.0.1:27017"),
		RedisAddr:           env("EMBEDDED_REDIS_ADDR", "127.0.0.1:6390"),
		S3Addr:              env("EMBEDDED_S3_ADDR", "127.0.0.1:9000"),
		S3Endpoint:          os.Getenv("S3_ENDPOINT"),
		S3Bucket:            os.Getenv("S3_BUCKET"),
		S3Region:            os.Getenv("S3_REGION"),
		S3Secure:            os.Getenv("S3_SECURE") == "true",
		S3AccessKey:         os.Getenv("S3_ACCESS_KEY"),
		S3SecretKey:         os.Getenv("S3_SECRET_KEY"),
		FaasPort:            faasPort,
		FaasUser:            env("FAAS_USER", "admin"),
		FaasPassword:        os.Getenv("FAAS_PASSWORD"),
		GatewayAddr:         env("GATEWAY_ADDR", ":10090"),
		GatewayInternalAddr: env("GATEWAY_INTERNAL_ADDR", "127.0.0.1:10091"),
		ConnectorHTTPAddr:   env("CONNECTOR_HTTP_ADDR", "127.0.0.1:8099"),
		ConnectorBatch:      batch,
		JWTSecret:           os.Getenv("JWT_SECRET"),
		InternalKey:         os.Getenv("INTERNAL_KEY"),
		AckMode:             session.AckMode(os.Getenv("GATEWAY_ACK_MODE")),
		Logger:              log,
	}
	if os.Getenv("CLUSTER") == "1" {
		cfg.Cluster = &stack.Cluster{}
	}
	start := time.Now()
	s, err := stack.Start(ctx, cfg)
	if err != nil {
		fatal(err)
	}
	if cfg.Cluster != nil {
		printCluster(s, time.Since(start))
	} else {
		printStack(s, cfg, time.Since(start))
	}
	fmt.Println("Ctrl-C stops everything.")

	<-ctx.Done()
	log.Info("shutting down")
	s.Close()
	log.Info("stopped")
}

// printCluster lists the processes of a cluster and the shared services.
func printCluster(s *stack.Stack, took time.Duration) {
	user, pass := s.FaasCredentials()
	fmt.Printf("\nEasy Chat is up as a cluster (%s).\n", took.Round(time.Millisecond))
	for _, p := range s.GatewayProcs() {
		fmt.Printf("  %-12s %s   (pid %d, internal http://%s)\n", p.Name, p.URL(), p.PID(), p.Internal)
	}
	for _, p := range s.ConnectorProcs() {
		fmt.Printf("  %-12s http://%s   (pid %d)\n", p.Name, p.Addr, p.PID())
	}
	fmt.Printf("  FaaS gateway %s   (faas-cli login -g %s -u %s -p %s)\n  kafka %s  mongo %s  redis %s\n",
		s.FaasURL, s.FaasURL, user, pass, s.Brokers, s.MongoURI, s.RedisURL)
}

// printStack lists the addresses of the one-process stack and a token for
// each demo user.
func printStack(s *stack.Stack, cfg stack.Config, took time.Duration) {
	user, pass := s.FaasCredentials()
	gw := s.Gateways()[0]
	fmt.Printf(`
Easy Chat is up (%s).
  websocket      %s
  FaaS gateway   %s   (faas-cli login -g %s -u %s -p %s)
  gateway push   %s   (internal; metrics at /metrics)
  connector      http://%s   (/metrics /healthz /readyz)
  kafka          %s
  mongo          %s
  redis          %s
  s3             %s (bucket %s)
  state          %s
`, took.Round(time.Millisecond), gw.URL(), s.FaasURL, s.FaasURL, user, pass,
		gw.PushURL(), cfg.ConnectorHTTPAddr, s.Brokers, s.MongoURI, s.RedisURL, s.S3.Endpoint, s.S3.Bucket, cfg.StateDir)

	issuer := token.New(s.JWTSecret(), 24*time.Hour)
	fmt.Println("Demo tokens (24 h):")
	for _, u := range strings.Split(env("DEMO_USERS", "alice,bob"), ",") {
		if u = strings.TrimSpace(u); u == "" {
			continue
		}
		if !ident.IsUser(u) {
			fatal(fmt.Errorf("DEMO_USERS: %q is not a user id", u))
		}
		t, err := issuer.Issue(u)
		if err != nil {
			fatal(err)
		}
		fmt.Printf("  %-8s %s?token=%s\n", u, gw.URL(), t)
	}
}

func env(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func fatal(err error) {
	slog.Error("devstack failed", "err", err)
	os.Exit(1)
}
