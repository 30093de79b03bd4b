// Command faas-local runs the local FaaS runtime (an OpenFaaS provider that
// runs functions as processes). Configuration comes from the environment:
// FAAS_PORT (8080), FAAS_STATE_DIR (.state/faas), FAAS_STACK (stack.yml,
// comma-separated for several), FAAS_TEMPLATE_DIR (template next to the first
// stack file), FAAS_USER (admin), FAAS_PASSWORD (generated and printed if unset).
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"easychat/faas/provider"
)

func main() {
	logger := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	slog.SetDefault(logger) // also routes faas-provider's log.Printf through slog
	if err := run(logger); err != nil {
		logger.Error("faas-local failed", "err", err)
		os.Exit(1)
	}
}

func run(logger *slog.Logger) error {
	port, err := strconv.Atoi(env("FAAS_PORT", "8080"))
	if err != nil {
		return fmt.Errorf("FAAS_PORT: %w", err)
	}
	password := os.Getenv("FAAS_PASSWORD")
	if password == "" {
		b := make([]byte, 16)
		_, _ = rand.Read(b)
		password = hex.EncodeToString(b)
		fmt.Fprintf(os.Stdout, "generated FAAS_PASSWORD=%s\n", password)
	}
	p, err := provider.New(provider.Config{
		Port:        port,
		StateDir:    env("FAAS_STATE_DIR", ".state/faas"),
		StackFiles:  strings.Split(env("FAAS_STACK", "stack.yml"), ","),
		TemplateDir: os.Getenv("FAAS_TEMPLATE_DIR"),
		User:        env("FAAS_USER", "admin"),
		Password:    password,
		Logger:      logger,
	})
	if err != nil {
		return err
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := p.Start(ctx); err != nil {
		return err
	}
	// Warm the builds in the background, so a first `faas-cli deploy` on a
	// cold machine does not wait out its 60 s timeout compiling.
	go func() {
		if err := p.Prebuild(ctx); err != nil {
			logger.Warn("prebuilding functions", "err", err)
		}
	}()
	<-ctx.Done()

	shutdownCtx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	p.Shutdown(shutdownCtx)
	return nil
}

func env(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}
