package reject

import (
	"errors"
	"fmt"
	"net/http"
	"testing"
)

func TestStatus(t *testing.T) {
	cases := map[error]int{
		Invalid("bad %s", "x"): http.StatusBadRequest,
		Unauthorized("no"):     http.StatusUnauthorized,
		Forbidden("no"):        http.StatusForbidden,
		NotFound("no"):         http.StatusNotFound,
		Conflict("no"):         http.StatusConflict,
		Limited("no"):          http.StatusTooManyRequests,
		TooLarge("no"):         http.StatusRequestEntityTooLarge,
		Unsupported("no"):      http.StatusUnsupportedMediaType,
		fmt.Errorf("wrapped: %w", Forbidden("x")): http.StatusForbidden,
		errors.New("mongo down"):                  http.StatusServiceUnavailable,
	}
	for err, want := range cases {
		if got := Status(err); got != want {
			t.Errorf("Status(%v) = %d, want %d", err, got, want)
		}
	}
	if Invalid("bad %d", 7).Error() != "bad 7" {
		t.Error("message not kept")
	}
}

func TestRefusalIsAKindNotAnOutage(t *testing.T) {
	if !Refusal(Limited("slow down")) || Status(Limited("x")) != http.StatusTooManyRequests {
		t.Fatal("Limited")
	}
	if !Refusal(fmt.Errorf("reading: %w", ErrNotFound)) || Refusal(errors.New("connection refused")) {
		t.Fatal("Refusal")
	}
}
