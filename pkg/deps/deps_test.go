package deps

import (
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"

	"easychat/pkg/secret"
)

// helperEnv runs this test binary as a function process would start: it asks
// for the secret named by the variable, which must stop the process.
const helperEnv = "EASYCHAT_DEPS_HELPER"

func TestMain(m *testing.M) {
	switch os.Getenv(helperEnv) {
	case "signer":
		Signer()
		os.Exit(0) // only reached with the secret
	case "tokens":
		Tokens()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// start runs the helper with env and returns its exit code and output.
func start(t *testing.T, helper string, env ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	for _, e := range os.Environ() {
		k, _, _ := strings.Cut(e, "=")
		if k != "INTERNAL_KEY" && k != "JWT_SECRET" && k != secret.DevSwitch && k != "ROUTE_TTL" {
			cmd.Env = append(cmd.Env, e)
		}
	}
	cmd.Env = append(cmd.Env, helperEnv+"="+helper, "SECRET_MOUNT_PATH="+t.TempDir())
	cmd.Env = append(cmd.Env, env...)
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return exit.ExitCode(), string(out)
	}
	if err != nil {
		t.Fatal(err)
	}
	return 0, string(out)
}

// A function without its secrets, or with a bad setting, does not start:
// it exits with a message naming what is wrong.
func TestFunctionsRefuseToStartMisconfigured(t *testing.T) {
	for _, c := range []struct {
		name, helper string
		env          []string
		code         int
		says         string
	}{
		{"no internal key", "signer", nil, 2, "internal-key is missing"},
		{"short internal key", "signer", []string{"INTERNAL_KEY=short"}, 2, "internal-key is too short"},
		{"no jwt secret", "tokens", nil, 2, "jwt-secret is missing"},
		{"bad ROUTE_TTL", "signer", []string{"INTERNAL_KEY=0123456789abcdef-key", "ROUTE_TTL=banana"}, 2, "ROUTE_TTL"},
		{"with the key", "signer", []string{"INTERNAL_KEY=0123456789abcdef-key"}, 0, ""},
		{"dev switch", "tokens", []string{secret.DevSwitch + "=1"}, 0, ""},
	} {
		code, out := start(t, c.helper, c.env...)
		if code != c.code || !strings.Contains(out, c.says) {
			t.Errorf("%s: exit %d, want %d; output:\n%s", c.name, code, c.code, out)
		}
	}
}
