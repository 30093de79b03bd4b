// Package secrets stores OpenFaaS secrets as files, the form functions read
// them in (one file per secret under SECRET_MOUNT_PATH).
package secrets

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
)

// ErrNotFound and ErrExists map to HTTP 404 and 409.
var (
	ErrNotFound = errors.New("secret not found")
	ErrExists   = errors.New("secret already exists")
)

// validName is Kubernetes' DNS-1123 subdomain rule, which faas-cli enforces
// too; it also keeps names from escaping the store's folder.
var validName = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`)

// Store keeps each secret in <Dir>/<name>.
type Store struct {
	Dir string
}

// ValidateName rejects names that are not DNS-1123 subdomains.
func ValidateName(name string) error {
	if len(name) > 253 || !validName.MatchString(name) {
		return fmt.Errorf("invalid secret name %q: use lower case letters, digits, '-' and '.'", name)
	}
	return nil
}

// List returns the secret names, sorted.
func (s *Store) List() ([]string, error) {
	entries, err := os.ReadDir(s.Dir)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("listing secrets: %w", err)
	}
	var names []string
	for _, e := range entries {
		if e.Type().IsRegular() && ValidateName(e.Name()) == nil {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	return names, nil
}

// Exists reports whether the secret is stored.
func (s *Store) Exists(name string) bool {
	if ValidateName(name) != nil {
		return false
	}
	st, err := os.Stat(filepath.Join(s.Dir, name))
	return err == nil && st.Mode().IsRegular()
}

// Create stores a new secret; ErrExists if it is already there.
func (s *Store) Create(name string, value []byte) error {
	if err := ValidateName(name); err != nil {
		return err
	}
	if err := os.MkdirAll(s.Dir, 0o700); err != nil {
		return fmt.Errorf("creating secrets dir: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(s.Dir, name), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if errors.Is(err, os.ErrExist) {
		return fmt.Errorf("%w: %s", ErrExists, name)
	}
	if err != nil {
		return fmt.Errorf("creating secret %s: %w", name, err)
	}
	if _, err := f.Write(value); err != nil {
		f.Close()
		return fmt.Errorf("writing secret %s: %w", name, err)
	}
	return f.Close()
}

// Update replaces an existing secret; ErrNotFound if there is none.
func (s *Store) Update(name string, value []byte) error {
	if !s.Exists(name) {
		return fmt.Errorf("%w: %s", ErrNotFound, name)
	}
	return writeAtomic(filepath.Join(s.Dir, name), value)
}

// Delete removes a secret; ErrNotFound if there is none.
func (s *Store) Delete(name string) error {
	if !s.Exists(name) {
		return fmt.Errorf("%w: %s", ErrNotFound, name)
	}
	if err := os.Remove(filepath.Join(s.Dir, name)); err != nil {
		return fmt.Errorf("deleting secret %s: %w", name, err)
	}
	return nil
}

// Materialize fills dir with copies of exactly the named secrets, so a
// function can read only what it declared. Missing secrets are an error.
func (s *Store) Materialize(dir string, names []string) error {
	for _, n := range names {
		if !s.Exists(n) {
			return fmt.Errorf("%w: %s", ErrNotFound, n)
		}
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("clearing %s: %w", dir, err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("creating %s: %w", dir, err)
	}
	for _, n := range names {
		v, err := os.ReadFile(filepath.Join(s.Dir, n))
		if err != nil {
			return fmt.Errorf("reading secret %s: %w", n, err)
		}
		if err := os.WriteFile(filepath.Join(dir, n), v, 0o600); err != nil {
			return fmt.Errorf("copying secret %s: %w", n, err)
		}
	}
	return nil
}

// Refresh rewrites one secret's copy in dir if dir holds it, so running
// functions see an updated value on their next read.
func (s *Store) Refresh(dir, name string) error {
	dst := filepath.Join(dir, name)
	if _, err := os.Stat(dst); err != nil {
		return nil
	}
	v, err := os.ReadFile(filepath.Join(s.Dir, name))
	if err != nil {
		return fmt.Errorf("reading secret %s: %w", name, err)
	}
	return writeAtomic(dst, v)
}

func writeAtomic(path string, value []byte) error {
	// The dot prefix keeps a half-written file out of List.
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp")
	if err := os.WriteFile(tmp, value, 0o600); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("replacing %s: %w", path, err)
	}
	return nil
}
