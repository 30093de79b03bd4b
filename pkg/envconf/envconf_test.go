package envconf

import (
	"strings"
	"testing"
	"time"
)

func TestReaderTakesDefaultsAndReportsEveryBadValue(t *testing.T) {
	t.Setenv("EC_TTL", "45s")
	t.Setenv("EC_N", "7")
	t.Setenv("EC_RATE", "2.5")
	t.Setenv("EC_LIST", " a, ,b ")
	var r Reader
	if d := r.Duration("EC_TTL", time.Second); d != 45*time.Second {
		t.Errorf("duration %v", d)
	}
	if d := r.Duration("EC_UNSET", time.Second); d != time.Second {
		t.Errorf("default duration %v", d)
	}
	if n := r.Int("EC_N", 1, 1); n != 7 {
		t.Errorf("int %d", n)
	}
	if f := r.Float("EC_RATE", 0, 0); f != 2.5 {
		t.Errorf("float %v", f)
	}
	if l := r.List("EC_LIST", nil); strings.Join(l, "|") != "a|b" {
		t.Errorf("list %q", l)
	}
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}

	t.Setenv("EC_TTL", "168")
	t.Setenv("EC_N", "0")
	t.Setenv("EC_BIG", "x")
	t.Setenv("EC_RATE", "-1")
	t.Setenv("EC_NAN", "NaN")
	var bad Reader
	if d := bad.Duration("EC_TTL", time.Hour); d != time.Hour {
		t.Errorf("a bad duration gave %v, want the default back", d)
	}
	bad.Int("EC_N", 1, 1)
	bad.Int64("EC_BIG", 1, 1)
	bad.Float("EC_RATE", 0, 0)
	bad.Float("EC_NAN", 0, 0)
	err := bad.Err()
	if err == nil {
		t.Fatal("bad values accepted")
	}
	for _, key := range []string{"EC_TTL", "EC_N", "EC_BIG", "EC_RATE", "EC_NAN"} {
		if !strings.Contains(err.Error(), key) {
			t.Errorf("error %q does not name %s", err, key)
		}
	}
}
