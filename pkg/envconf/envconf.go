// Package envconf reads a program's settings from its environment, the one
// way every program here does: at start, each value checked as it is read,
// and every bad one reported at once with the variable's name, so a typo
// stops the program instead of turning into a default or a failure later.
//
//	var r envconf.Reader
//	ttl := r.Duration("ROUTE_TTL", 30*time.Second)
//	n := r.Int("QUEUE_SIZE", 512, 1)
//	if err := r.Err(); err != nil { ... exit ... }
//
// An unset or empty variable takes the default.
package envconf

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// Reader reads variables and collects what was wrong with them.
type Reader struct {
	errs []error
}

// Err is every problem found so far, or nil.
func (r *Reader) Err() error { return errors.Join(r.errs...) }

// Fail records a problem found by the caller's own parsing of key.
func (r *Reader) Fail(key string, err error) {
	r.errs = append(r.errs, fmt.Errorf("%s: %w", key, err))
}

func (r *Reader) bad(key, v, want string) {
	r.errs = append(r.errs, fmt.Errorf("%s=%q: want %s", key, v, want))
}

func lookup(key string) (string, bool) {
	v := strings.TrimSpace(os.Getenv(key))
	return v, v != ""
}

// String is key's value, or def.
func (r *Reader) String(key, def string) string {
	if v, ok := lookup(key); ok {
		return v
	}
	return def
}

// Duration is key as a positive Go duration (such as 30s), or def.
func (r *Reader) Duration(key string, def time.Duration) time.Duration {
	v, ok := lookup(key)
	if !ok {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		r.bad(key, v, "a positive duration such as 30s")
		return def
	}
	return d
}

// Int is key as an integer of at least min, or def.
func (r *Reader) Int(key string, def, min int) int {
	return number(r, key, def, min, strconv.Atoi, "an integer")
}

// Int64 is Int for int64 values.
func (r *Reader) Int64(key string, def, min int64) int64 {
	return number(r, key, def, min, func(v string) (int64, error) { return strconv.ParseInt(v, 10, 64) }, "an integer")
}

// Float is key as a number of at least min, or def (NaN is refused).
func (r *Reader) Float(key string, def, min float64) float64 {
	return number(r, key, def, min, func(v string) (float64, error) { return strconv.ParseFloat(v, 64) }, "a number")
}

func number[T int | int64 | float64](r *Reader, key string, def, min T, parse func(string) (T, error), kind string) T {
	v, ok := lookup(key)
	if !ok {
		return def
	}
	n, err := parse(v)
	if err != nil || !(n >= min) { // !(>=) also refuses NaN
		r.bad(key, v, fmt.Sprintf("%s of at least %v", kind, min))
		return def
	}
	return n
}

// List is key split at commas, blanks dropped, or def when unset.
func (r *Reader) List(key string, def []string) []string {
	v, ok := os.LookupEnv(key)
	if !ok {
		return def
	}
	out := []string{}
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}
