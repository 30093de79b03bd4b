// Command connector consumes the chat Kafka topics and invokes the OpenFaaS
// functions subscribed to them (see package consume for the semantics and
// ConfigFromEnv for the environment variables). It stops gracefully on
// SIGTERM or SIGINT.
package main

import (
	"context"
	"log"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"easychat/connector/consume"
	"easychat/pkg/logging"
)

func main() {
	logger, err := logging.JSON("LOG_LEVEL")
	if err != nil {
		slog.Error("connector cannot start", "err", err)
		os.Exit(2)
	}
	slog.SetDefault(logger)
	// The connector-sdk logs every invocation through the standard logger;
	// keep that at debug level rather than one info line per message.
	log.SetFlags(0)
	log.SetOutput(stdlogWriter{logger})

	cfg, err := consume.ConfigFromEnv()
	if err != nil {
		logger.Error("config", "err", err)
		os.Exit(2)
	}
	c, err := consume.New(cfg, logger)
	if err != nil {
		logger.Error("start", "err", err)
		os.Exit(1)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := c.Run(ctx); err != nil {
		logger.Error("connector stopped", "err", err)
		os.Exit(1)
	}
}

type stdlogWriter struct{ l *slog.Logger }

func (w stdlogWriter) Write(p []byte) (int, error) {
	w.l.Debug(strings.TrimSpace(string(p)), "source", "stdlog")
	return len(p), nil
}
