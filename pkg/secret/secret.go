// Package secret reads configuration secrets the OpenFaaS way: a file named for
// the secret under the secret mount path, falling back to an environment
// variable, then to a development default.
package secret

import (
	"os"
	"path/filepath"
	"strings"
)

// MountPath is where OpenFaaS mounts function secrets; SECRET_MOUNT_PATH
// overrides it (the local runtime points it at a per-function folder).
func MountPath() string {
	if p := os.Getenv("SECRET_MOUNT_PATH"); p != "" {
		return p
	}
	return "/var/openfaas/secrets"
}

// Read returns secret name from the mount path, else env var envKey, else def.
func Read(name, envKey, def string) string {
	if b, err := os.ReadFile(filepath.Join(MountPath(), name)); err == nil {
		if v := strings.TrimSpace(string(b)); v != "" {
			return v
		}
	}
	if v := os.Getenv(envKey); v != "" {
		return v
	}
	return def
}

// Names of the secrets the components share.
const (
	JWT      = "jwt-secret"   // env JWT_SECRET
	Internal = "internal-key" // env INTERNAL_KEY: HMAC key for calls between components
)
