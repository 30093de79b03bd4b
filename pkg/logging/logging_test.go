package logging

import (
	"log/slog"
	"testing"
)

func TestLevel(t *testing.T) {
	for v, want := range map[string]slog.Level{"": slog.LevelInfo, "debug": slog.LevelDebug, "INFO": slog.LevelInfo,
		"Warn": slog.LevelWarn, " error ": slog.LevelError} {
		t.Setenv("X_LOG_LEVEL", v)
		if got, err := Level("X_LOG_LEVEL"); err != nil || got != want {
			t.Errorf("%q: %v, %v; want %v", v, got, err, want)
		}
	}
	for _, v := range []string{"verbose", "debug+2", "0", "warning"} {
		t.Setenv("X_LOG_LEVEL", v)
		if _, err := Level("X_LOG_LEVEL"); err == nil {
			t.Errorf("%q accepted", v)
		}
	}
}
