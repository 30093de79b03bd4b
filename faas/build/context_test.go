package build_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"easychat/faas/build"
	"easychat/faas/stackfile"
)

// project lays out a stack folder with a template, a handler and a shared pkg.
func project(t *testing.T, withPkg bool) (stackfile.Function, string) {
	t.Helper()
	dir := t.TempDir()
	write(t, filepath.Join(dir, "template/golang-http/main.go"), "package main\n")
	write(t, filepath.Join(dir, "template/golang-http/go.mod"), "module handler\n")
	write(t, filepath.Join(dir, "template/golang-http/template.yml"), "language: golang-http\nfprocess: ./handler\n")
	write(t, filepath.Join(dir, "template/golang-http/go.work"),
		"go 1.26.0\n\n// comment stays\nuse (\n\t.\n\t./function\n\t./function/pkg // shared code\n)\n")
	write(t, filepath.Join(dir, "functions/chat/handler.go"), "package function\n")
	write(t, filepath.Join(dir, "functions/chat/go.mod"), "module handler/function\n")
	write(t, filepath.Join(dir, "functions/chat/sub/x.go"), "package sub\n")
	write(t, filepath.Join(dir, "functions/chat/build/stale"), "old output")
	write(t, filepath.Join(dir, "functions/chat/template/stale"), "nested template")
	copyList := []string{}
	if withPkg {
		write(t, filepath.Join(dir, "pkg/go.mod"), "module easychat/pkg\n")
		write(t, filepath.Join(dir, "pkg/frame/frame.go"), "package frame\n")
		copyList = []string{"pkg"}
	}
	fn := stackfile.Function{
		Name: "chat", Lang: "golang-http", Image: "easychat/chat:latest",
		Handler: filepath.Join(dir, "functions/chat"), StackDir: dir, Copy: copyList,
		StackFile: filepath.Join(dir, "stack.yml"),
	}
	return fn, filepath.Join(dir, "template")
}

func TestAssembleLikeShrinkwrap(t *testing.T) {
	fn, tmpl := project(t, true)
	dest := filepath.Join(t.TempDir(), "build", "chat")
	write(t, filepath.Join(dest, "leftover"), "from a previous build")

	if err := build.Assemble(fn, tmpl, dest); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"main.go", "go.mod", "template.yml", "function/handler.go", "function/go.mod",
		"function/sub/x.go", "function/pkg/go.mod", "function/pkg/frame/frame.go"} {
		if _, err := os.Stat(filepath.Join(dest, p)); err != nil {
			t.Errorf("missing %s: %v", p, err)
		}
	}
	for _, p := range []string{"leftover", "function/build", "function/template"} {
		if _, err := os.Stat(filepath.Join(dest, p)); err == nil {
			t.Errorf("%s should not be in the build context", p)
		}
	}
	work := read(t, filepath.Join(dest, "go.work"))
	if !strings.Contains(work, "./function/pkg") {
		t.Errorf("go.work lost the pkg entry although pkg exists:\n%s", work)
	}
}

func TestAssemblePrunesMissingWorkspaceEntries(t *testing.T) {
	fn, tmpl := project(t, false)
	dest := filepath.Join(t.TempDir(), "chat")
	if err := build.Assemble(fn, tmpl, dest); err != nil {
		t.Fatal(err)
	}
	work := read(t, filepath.Join(dest, "go.work"))
	if strings.Contains(work, "function/pkg") {
		t.Errorf("go.work still uses the missing ./function/pkg:\n%s", work)
	}
	for _, keep := range []string{"go 1.26.0", "// comment stays", "\t.\n", "\t./function\n"} {
		if !strings.Contains(work, keep) {
			t.Errorf("go.work lost %q:\n%s", keep, work)
		}
	}
}

func TestAssembleErrors(t *testing.T) {
	fn, tmpl := project(t, false)
	bad := fn
	bad.Lang = "python3"
	if err := build.Assemble(bad, tmpl, t.TempDir()); err == nil || !strings.Contains(err.Error(), "python3") {
		t.Errorf("unknown template: %v", err)
	}
	bad = fn
	bad.Handler = filepath.Join(t.TempDir(), "nope")
	if err := build.Assemble(bad, tmpl, t.TempDir()); err == nil {
		t.Error("missing handler accepted")
	}
}

func TestInputsHashTracksChanges(t *testing.T) {
	fn, tmpl := project(t, true)
	h1, err := build.InputsHash(fn, tmpl)
	if err != nil {
		t.Fatal(err)
	}
	if h2, _ := build.InputsHash(fn, tmpl); h2 != h1 {
		t.Fatal("hash not stable")
	}
	// Output folders of the handler are not inputs.
	write(t, filepath.Join(fn.Handler, "build", "more"), "x")
	if h, _ := build.InputsHash(fn, tmpl); h != h1 {
		t.Error("handler/build changed the hash")
	}
	for _, p := range []string{
		filepath.Join(fn.Handler, "handler.go"),
		filepath.Join(fn.StackDir, "pkg", "frame", "frame.go"),
		filepath.Join(tmpl, "golang-http", "main.go"),
	} {
		future := time.Now().Add(time.Hour)
		if err := os.Chtimes(p, future, future); err != nil {
			t.Fatal(err)
		}
		h, _ := build.InputsHash(fn, tmpl)
		if h == h1 {
			t.Errorf("touching %s did not change the hash", p)
		}
		h1 = h
	}
}

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func read(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
