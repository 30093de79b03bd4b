// Package logging reads a program's log level from its environment, one way
// for every program: debug, info, warn or error (any case), info when unset.
// A value that is none of these stops the program at start with a message
// naming the variable, rather than logging at a level nobody asked for.
package logging

import (
	"fmt"
	"log/slog"
	"os"
	"strings"
)

// Level is the level named by environment variable key (info when unset).
func Level(key string) (slog.Level, error) {
	v := strings.TrimSpace(os.Getenv(key))
	if v == "" {
		return slog.LevelInfo, nil
	}
	var l slog.Level
	switch strings.ToLower(v) {
	case "debug", "info", "warn", "error":
		if err := l.UnmarshalText([]byte(v)); err == nil {
			return l, nil
		}
	}
	return slog.LevelInfo, fmt.Errorf("%s=%q: want debug, info, warn or error", key, v)
}

// JSON returns a logger writing JSON lines to stderr at the level key names.
func JSON(key string) (*slog.Logger, error) {
	l, err := Level(key)
	if err != nil {
		return nil, err
	}
	return slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: l})), nil
}
