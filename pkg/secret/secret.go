// Package secret reads configuration secrets the OpenFaaS way: a file named for
// the secret under the secret mount path, falling back to an environment
// variable. A program that needs a secret refuses to start without it: the
// development values are published in this repository, so running on them
// would let anyone mint tokens or sign internal calls. Only the explicit
// development switch (EASYCHAT_DEV=1) lets a program fall back to them.
package secret

import (
	"fmt"
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
// Use it for optional settings (e.g. basic-auth credentials); keys go through
// Require.
func Read(name, envKey, def string) string {
	if v := lookup(name, envKey); v != "" {
		return v
	}
	return def
}

func lookup(name, envKey string) string {
	if b, err := os.ReadFile(filepath.Join(MountPath(), name)); err == nil {
		if v := strings.TrimSpace(string(b)); v != "" {
			return v
		}
	}
	return strings.TrimSpace(os.Getenv(envKey))
}

// DevSwitch is the environment variable that lets a program run on the public
// development secrets when its own are missing: set it to 1 on a developer's
// machine only. `make run` sets it (and still generates random secrets).
const DevSwitch = "EASYCHAT_DEV"

// Dev reports whether the development switch is on.
func Dev() bool {
	v := strings.ToLower(strings.TrimSpace(os.Getenv(DevSwitch)))
	return v == "1" || v == "true" || v == "yes"
}

// MinLength is the shortest secret accepted: an HMAC key or JWT secret that
// can be guessed protects nothing.
const MinLength = 16

// Check validates a secret value that came from configuration other than
// Require (an embedder's Config): empty or short values are refused unless
// the development switch is on, in which case dev is returned.
func Check(name, envKey, value, dev string) (string, error) {
	switch {
	case value == "" && Dev():
		return dev, nil
	case value == "":
		return "", fmt.Errorf("secret %s is missing: mount it at %s or set %s (%s=1 runs on the public development secret, for a developer's machine only)",
			name, filepath.Join(MountPath(), name), envKey, DevSwitch)
	case len(value) < MinLength && !Dev():
		return "", fmt.Errorf("secret %s is too short: at least %d bytes", name, MinLength)
	}
	return value, nil
}

// Require returns secret name from the mount path or env var envKey. A missing,
// empty or short secret is an error, unless the development switch is on:
// then a missing one is dev (the published development value).
func Require(name, envKey, dev string) (string, error) {
	return Check(name, envKey, lookup(name, envKey), dev)
}

// Names of the secrets the components share.
const (
	JWT      = "jwt-secret"   // env JWT_SECRET
	Internal = "internal-key" // env INTERNAL_KEY: HMAC key for calls between components
	// The file store's credentials (S3 access key id and secret key).
	S3AccessKey = "s3-access-key" // env S3_ACCESS_KEY
	S3SecretKey = "s3-secret-key" // env S3_SECRET_KEY
)
