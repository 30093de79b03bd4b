// Command gateway is the Easy Chat websocket gateway: it holds client sockets,
// forwards their frames to OpenFaaS functions, and delivers pushes from
// functions to sockets. Configuration is from the environment; every variable
// and its default is listed on server.Config (gateway/server/config.go).
// SIGTERM or SIGINT drains gracefully.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"easychat/gateway/server"
	"easychat/pkg/blob"
	"easychat/pkg/envconf"
	"easychat/pkg/logging"
	"easychat/pkg/nonce"
)

func main() {
	logger, err := logging.JSON("GATEWAY_LOG_LEVEL")
	if err != nil {
		slog.Error("gateway cannot start", "err", err)
		os.Exit(2)
	}
	if err := run(logger); err != nil {
		logger.Error("gateway failed", "err", err)
		os.Exit(1)
	}
}

func run(logger *slog.Logger) error {
	cfg, err := server.ConfigFromEnv()
	if err != nil {
		return err
	}
	var env envconf.Reader
	s3, err := blob.ConfigFromEnv(&env)
	if err = errors.Join(err, env.Err()); err != nil {
		return fmt.Errorf("file store: %w", err)
	}
	if cfg.Files, err = blob.NewS3(s3); err != nil {
		return err
	}
	reg, rdb, err := server.NewRedisRegistry(cfg.RedisURL, cfg.RouteTTL)
	if err != nil {
		return err
	}
	defer rdb.Close()
	cfg.Replays = nonce.NewRedis(rdb) // a push signed for one instance is not replayed to another
	s, err := server.New(cfg, reg, logger)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	go func() {
		<-ctx.Done()
		stop() // a second signal kills the process instead of waiting for the drain
	}()
	return s.Run(ctx)
}
