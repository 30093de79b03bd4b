package limit

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"easychat/pkg/reject"
)

func TestParseRule(t *testing.T) {
	for in, want := range map[string]Rule{"10/5m": {10, 5 * time.Minute}, " 3 / 1h ": {3, time.Hour}, "0": {}, "off": {}} {
		if got, err := ParseRule(in); err != nil || got != want {
			t.Errorf("ParseRule(%q) = %v, %v", in, got, err)
		}
	}
	for _, bad := range []string{"", "10", "x/1m", "10/x", "-1/1m", "10/-1m"} {
		if _, err := ParseRule(bad); err == nil {
			t.Errorf("ParseRule(%q) accepted", bad)
		}
	}
}

func TestMemoryWindows(t *testing.T) {
	ctx := context.Background()
	now := time.Unix(1000, 0)
	l := NewMemory()
	l.now = func() time.Time { return now }
	r := Rule{N: 3, Per: time.Minute}
	for i := range 3 {
		if err := Check(ctx, l, "login:bob", r, "login attempts"); err != nil {
			t.Fatalf("attempt %d: %v", i+1, err)
		}
	}
	err := Check(ctx, l, "login:bob", r, "login attempts")
	if !errors.Is(err, reject.ErrLimited) || !strings.Contains(err.Error(), "retry in") {
		t.Fatalf("4th attempt: %v", err)
	}
	if err := Check(ctx, l, "login:carol", r, "login attempts"); err != nil {
		t.Fatalf("another key is limited too: %v", err)
	}
	now = now.Add(time.Minute)
	if err := Check(ctx, l, "login:bob", r, "login attempts"); err != nil {
		t.Fatalf("next window: %v", err)
	}
	if err := Check(ctx, l, "x", Rule{}, "x"); err != nil {
		t.Fatalf("off: %v", err)
	}
}
