package stackfile_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"easychat/faas/stackfile"
)

func TestParseAndLookup(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("STACKFILE_TEST_REGISTRY", "reg.example")
	stack := filepath.Join(dir, "stack.yml")
	writeFile(t, stack, `version: 1.0
provider:
  name: openfaas
  gateway: http://127.0.0.1:8080
configuration:
  copy:
    - pkg
functions:
  chat:
    lang: golang-http
    handler: ./functions/chat
    image: ${STACKFILE_TEST_REGISTRY:-easychat}/chat:${STACKFILE_TEST_TAG:-latest}
  abs:
    lang: golang-http
    handler: /srv/abs
    image: easychat/abs:latest
`)
	other := filepath.Join(dir, "more", "stack.yml")
	writeFile(t, other, `functions:
  extra:
    lang: golang-http
    handler: ./extra
    image: easychat/extra:1
`)

	st, err := stackfile.Parse([]string{stack, other})
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Functions) != 3 {
		t.Fatalf("want 3 functions, got %+v", st.Functions)
	}

	chat, err := st.Lookup("chat", "")
	if err != nil {
		t.Fatal(err)
	}
	want := stackfile.Function{
		Name: "chat", Lang: "golang-http", Image: "reg.example/chat:latest",
		Handler: filepath.Join(dir, "functions", "chat"), StackDir: dir, Copy: []string{"pkg"}, StackFile: stack,
	}
	if chat.Name != want.Name || chat.Lang != want.Lang || chat.Image != want.Image ||
		chat.Handler != want.Handler || chat.StackDir != want.StackDir || chat.StackFile != want.StackFile ||
		len(chat.Copy) != 1 || chat.Copy[0] != "pkg" {
		t.Fatalf("chat:\n got %+v\nwant %+v", chat, want)
	}

	if f, _ := st.Lookup("abs", ""); f.Handler != "/srv/abs" {
		t.Errorf("absolute handler kept as is, got %q", f.Handler)
	}
	// Another service name, same image: found by image.
	if f, err := st.Lookup("chat-canary", "reg.example/chat:latest"); err != nil || f.Name != "chat" {
		t.Errorf("lookup by image: %+v, %v", f, err)
	}
	// The second file has its own folder and no copy list.
	if f, _ := st.Lookup("extra", ""); f.Handler != filepath.Join(dir, "more", "extra") || len(f.Copy) != 0 {
		t.Errorf("extra: %+v", f)
	}
	if _, err := st.Lookup("ghost", "easychat/ghost:1"); !errors.Is(err, stackfile.ErrNotFound) {
		t.Errorf("unknown function: want ErrNotFound, got %v", err)
	}
}

func TestCopyMustStayInsideStackFolder(t *testing.T) {
	dir := t.TempDir()
	for _, bad := range []string{"../outside", ".", "/etc"} {
		stack := filepath.Join(dir, "stack.yml")
		writeFile(t, stack, "configuration:\n  copy:\n    - "+bad+"\nfunctions: {}\n")
		if _, err := stackfile.Parse([]string{stack}); err == nil {
			t.Errorf("copy path %q accepted", bad)
		}
	}
}

func TestParseErrors(t *testing.T) {
	if _, err := stackfile.Parse([]string{filepath.Join(t.TempDir(), "missing.yml")}); err == nil {
		t.Error("missing file accepted")
	}
	bad := filepath.Join(t.TempDir(), "bad.yml")
	writeFile(t, bad, "functions: [\n")
	if _, err := stackfile.Parse([]string{bad}); err == nil {
		t.Error("invalid YAML accepted")
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}
