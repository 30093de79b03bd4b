package secrets_test

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"easychat/faas/secrets"
)

func TestStoreLifecycle(t *testing.T) {
	s := &secrets.Store{Dir: filepath.Join(t.TempDir(), "secrets")}
	if names, err := s.List(); err != nil || len(names) != 0 {
		t.Fatalf("empty store: %v %v", names, err)
	}
	if err := s.Create("internal-key", []byte("v1")); err != nil {
		t.Fatal(err)
	}
	if err := s.Create("other", []byte("o")); err != nil {
		t.Fatal(err)
	}
	if err := s.Create("internal-key", []byte("again")); !errors.Is(err, secrets.ErrExists) {
		t.Fatalf("duplicate: %v", err)
	}
	if names, _ := s.List(); !reflect.DeepEqual(names, []string{"internal-key", "other"}) {
		t.Fatalf("list: %v", names)
	}

	// A function gets copies of exactly what it declared.
	fnDir := filepath.Join(t.TempDir(), "fn")
	if err := s.Materialize(fnDir, []string{"internal-key"}); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(fnDir)
	if len(entries) != 1 || entries[0].Name() != "internal-key" {
		t.Fatalf("function dir holds %v", entries)
	}
	if err := s.Materialize(fnDir, []string{"missing"}); !errors.Is(err, secrets.ErrNotFound) {
		t.Fatalf("missing secret: %v", err)
	}

	if err := s.Update("internal-key", []byte("v2")); err != nil {
		t.Fatal(err)
	}
	if err := s.Refresh(fnDir, "internal-key"); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(fnDir, "internal-key")); string(b) != "v2" {
		t.Fatalf("refreshed copy = %q", b)
	}
	if err := s.Refresh(fnDir, "other"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(fnDir, "other")); err == nil {
		t.Fatal("Refresh added an undeclared secret")
	}
	if err := s.Update("nope", nil); !errors.Is(err, secrets.ErrNotFound) {
		t.Fatalf("update missing: %v", err)
	}
	if err := s.Delete("other"); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete("other"); !errors.Is(err, secrets.ErrNotFound) {
		t.Fatalf("delete twice: %v", err)
	}
}

func TestNamesCannotEscape(t *testing.T) {
	s := &secrets.Store{Dir: t.TempDir()}
	for _, bad := range []string{"", "../x", "a/b", "UPPER", ".hidden", "-x"} {
		if err := s.Create(bad, []byte("v")); err == nil {
			t.Errorf("name %q accepted", bad)
		}
	}
}
