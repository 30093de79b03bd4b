package embedded

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

// Attributes and groups added with With reach the records that are logged,
// in order, and cost nothing for the ones that are not.
func TestLazyHandlerKeepsAttrsOfLoggedRecords(t *testing.T) {
	var buf bytes.Buffer
	l := lazy(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelWarn})))
	q := l.With("sql", "INSERT …").WithGroup("g").With("n", 1)
	q.Info("not logged")
	q.Warn("logged", "k", "v")
	l.Warn("plain")
	out := buf.String()
	if strings.Contains(out, "not logged") {
		t.Fatalf("a record below the level was written: %s", out)
	}
	if !strings.Contains(out, `msg=logged sql="INSERT …" g.n=1 g.k=v`) || !strings.Contains(out, "msg=plain\n") {
		t.Fatalf("got %q", out)
	}
}
