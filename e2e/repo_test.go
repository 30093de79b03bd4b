package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
)

// repoRoot is the repository root, found from this file's location.
func repoRoot(t testing.TB) string {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("cannot locate the test source")
	}
	return filepath.Dir(filepath.Dir(file))
}

// faasCLI returns the faas-cli 0.13.14 binary, building it if needed (the
// Makefile does the same; tests may run without make).
func faasCLI(t testing.TB) string {
	root := repoRoot(t)
	bin := filepath.Join(root, "bin", "faas-cli")
	if _, err := os.Stat(bin); err == nil {
		return bin
	}
	cmd := exec.Command("go", "build", "-ldflags", "-X github.com/openfaas/faas-cli/version.Version=0.13.14",
		"-o", bin, "github.com/openfaas/faas-cli")
	cmd.Dir = filepath.Join(root, "tools", "faas-cli")
	cmd.Env = append(os.Environ(), "GOWORK=off")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building faas-cli: %v\n%s", err, out)
	}
	return bin
}

func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	if out, err := exec.Command("cp", "-r", src, dst).CombinedOutput(); err != nil {
		t.Fatalf("copying %s: %v\n%s", src, err, out)
	}
}

// faas-cli's shrinkwrapped build contexts must compile with plain `go build`
// and no network: that is exactly what the template's Dockerfile runs.
func TestShrinkwrapBuildsEveryFunctionOffline(t *testing.T) {
	root := repoRoot(t)
	cli := faasCLI(t)
	work := t.TempDir()
	for _, p := range []string{"stack.yml", "template", "functions", "pkg"} {
		copyTree(t, filepath.Join(root, p), filepath.Join(work, p))
	}
	cmd := exec.Command(cli, "build", "--shrinkwrap", "-f", "stack.yml")
	cmd.Dir = work
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("faas-cli build --shrinkwrap: %v\n%s", err, out)
	}
	entries, err := os.ReadDir(filepath.Join(root, "functions"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		name := e.Name()
		t.Run(name, func(t *testing.T) {
			ctx := filepath.Join(work, "build", name)
			if _, err := os.Stat(filepath.Join(ctx, "function", "pkg", "go.mod")); err != nil {
				t.Fatalf("shared pkg not copied into the build context: %v", err)
			}
			// Fetch modules first (a Docker build does this in its own layer),
			// then compile with the network off: the context is complete.
			dl := exec.Command("go", "mod", "download")
			dl.Dir = ctx
			dl.Env = append(os.Environ(), "GOWORK=")
			if out, err := dl.CombinedOutput(); err != nil {
				t.Fatalf("go mod download in %s: %v\n%s", ctx, err, out)
			}
			build := exec.Command("go", "build", "-o", filepath.Join(work, name+".bin"), ".")
			build.Dir = ctx
			// Offline: only the local module cache may be used.
			build.Env = append(os.Environ(), "GOPROXY=off", "GOFLAGS=", "GOWORK=")
			if out, err := build.CombinedOutput(); err != nil {
				t.Fatalf("go build in %s: %v\n%s", ctx, err, out)
			}
		})
	}
}
