// Package build turns a stack-file function into a native binary the way
// `faas-cli build --shrinkwrap` followed by the template's Dockerfile would:
// the same build context, then `go build` inside it.
package build

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"gopkg.in/yaml.v3"

	"easychat/faas/stackfile"
)

// skippedHandlerEntries are top-level handler entries faas-cli never copies:
// they would be earlier build output or a nested template folder.
var skippedHandlerEntries = map[string]bool{"build": true, "template": true}

// HandlerFolder reads template.yml's handler_folder (default "function"), the
// folder of the build context that receives the handler.
func HandlerFolder(templateLangDir string) (string, error) {
	raw, err := os.ReadFile(filepath.Join(templateLangDir, "template.yml"))
	if err != nil {
		if os.IsNotExist(err) {
			return "function", nil
		}
		return "", fmt.Errorf("reading template.yml: %w", err)
	}
	var t struct {
		HandlerFolder string `yaml:"handler_folder"`
	}
	if err := yaml.Unmarshal(raw, &t); err != nil {
		return "", fmt.Errorf("parsing %s: %w", filepath.Join(templateLangDir, "template.yml"), err)
	}
	if t.HandlerFolder == "" {
		return "function", nil
	}
	return t.HandlerFolder, nil
}

// Assemble creates the build context for fn in dest, replacing whatever was
// there: template/<lang>/, then the handler folder's entries (minus build and
// template) into dest/<handler_folder>/, then each configuration.copy path into
// dest/<handler_folder>/<path>. A go.work that lists folders the context does not
// have (a function without a shared pkg) is pruned so the build still works.
func Assemble(fn stackfile.Function, templateDir, dest string) error {
	langDir := filepath.Join(templateDir, fn.Lang)
	if fn.Lang == "" {
		return fmt.Errorf("function %s has no lang in %s", fn.Name, fn.StackFile)
	}
	if st, err := os.Stat(langDir); err != nil || !st.IsDir() {
		return fmt.Errorf("template %q not found in %s", fn.Lang, templateDir)
	}
	handlerFolder, err := HandlerFolder(langDir)
	if err != nil {
		return err
	}
	if err := os.RemoveAll(dest); err != nil {
		return fmt.Errorf("clearing build context %s: %w", dest, err)
	}
	if err := CopyTree(langDir, dest); err != nil {
		return fmt.Errorf("copying template %s: %w", fn.Lang, err)
	}

	fnDir := filepath.Join(dest, handlerFolder)
	if err := os.MkdirAll(fnDir, 0o755); err != nil {
		return fmt.Errorf("creating handler folder: %w", err)
	}
	entries, err := os.ReadDir(fn.Handler)
	if err != nil {
		return fmt.Errorf("reading handler folder of %s: %w", fn.Name, err)
	}
	for _, e := range entries {
		if skippedHandlerEntries[e.Name()] {
			continue
		}
		if err := CopyTree(filepath.Join(fn.Handler, e.Name()), filepath.Join(fnDir, e.Name())); err != nil {
			return fmt.Errorf("copying handler of %s: %w", fn.Name, err)
		}
	}

	for _, c := range fn.Copy {
		src, err := stackfile.InScope(fn.StackDir, c)
		if err != nil {
			return fmt.Errorf("configuration.copy of %s: %w", fn.StackFile, err)
		}
		if err := CopyTree(src, filepath.Join(fnDir, filepath.FromSlash(c))); err != nil {
			return fmt.Errorf("configuration.copy %s: %w", c, err)
		}
	}

	return pruneWorkspace(filepath.Join(dest, "go.work"))
}

// pruneWorkspace drops `use` entries whose folder is missing from the context.
func pruneWorkspace(path string) error {
	raw, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading go.work: %w", err)
	}
	dir := filepath.Dir(path)
	missing := func(entry string) bool {
		entry = strings.TrimSpace(entry)
		if i := strings.Index(entry, "//"); i >= 0 {
			entry = strings.TrimSpace(entry[:i])
		}
		entry = strings.Trim(entry, `"`)
		if entry == "" || entry == "(" || entry == ")" {
			return false
		}
		st, err := os.Stat(filepath.Join(dir, filepath.FromSlash(entry)))
		return err != nil || !st.IsDir()
	}

	var out bytes.Buffer
	inUse, changed := false, false
	sc := bufio.NewScanner(bytes.NewReader(raw))
	for sc.Scan() {
		line := sc.Text()
		trimmed := strings.TrimSpace(line)
		switch {
		case inUse && strings.HasPrefix(trimmed, ")"):
			inUse = false
		case inUse:
			if missing(trimmed) {
				changed = true
				continue
			}
		case strings.HasPrefix(trimmed, "use") && strings.HasSuffix(strings.TrimSpace(strings.TrimPrefix(trimmed, "use")), "("):
			inUse = true
		case strings.HasPrefix(trimmed, "use "):
			if missing(strings.TrimPrefix(trimmed, "use ")) {
				changed = true
				continue
			}
		}
		out.WriteString(line)
		out.WriteByte('\n')
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("reading go.work: %w", err)
	}
	if !changed {
		return nil
	}
	if err := os.WriteFile(path, out.Bytes(), 0o644); err != nil {
		return fmt.Errorf("writing pruned go.work: %w", err)
	}
	return nil
}

// CopyTree copies a file or folder recursively, following symlinks like faas-cli
// does, so the context holds plain files.
func CopyTree(src, dst string) error {
	st, err := os.Stat(src)
	if err != nil {
		return err
	}
	if !st.IsDir() {
		return copyFile(src, dst, st.Mode().Perm())
	}
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return err
	}
	entries, err := os.ReadDir(src)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if err := CopyTree(filepath.Join(src, e.Name()), filepath.Join(dst, e.Name())); err != nil {
			return err
		}
	}
	return nil
}

func copyFile(src, dst string, perm fs.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, perm|0o200)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// InputsHash fingerprints everything Assemble reads (paths, sizes, mtimes and
// modes, not contents: cheap, and an edit always touches the mtime), so an
// unchanged function is not rebuilt.
func InputsHash(fn stackfile.Function, templateDir string, extra ...string) (string, error) {
	h := sha256.New()
	fmt.Fprintf(h, "name=%s lang=%s handler=%s\n", fn.Name, fn.Lang, fn.Handler)
	for _, e := range extra {
		fmt.Fprintf(h, "extra=%s\n", e)
	}
	add := func(label, root string, skipTop map[string]bool) error {
		return walkStat(root, func(rel string, info fs.FileInfo) bool {
			if skipTop != nil && !strings.Contains(rel, string(filepath.Separator)) && skipTop[rel] {
				return false
			}
			fmt.Fprintf(h, "%s:%s %d %d %o\n", label, rel, info.Size(), info.ModTime().UnixNano(), info.Mode())
			return true
		})
	}
	if err := add("template", filepath.Join(templateDir, fn.Lang), nil); err != nil {
		return "", fmt.Errorf("hashing template: %w", err)
	}
	if err := add("handler", fn.Handler, skippedHandlerEntries); err != nil {
		return "", fmt.Errorf("hashing handler: %w", err)
	}
	for _, c := range fn.Copy {
		src, err := stackfile.InScope(fn.StackDir, c)
		if err != nil {
			return "", err
		}
		if err := add("copy/"+c, src, nil); err != nil {
			return "", fmt.Errorf("hashing %s: %w", c, err)
		}
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// walkStat visits root and everything below it (following symlinks, as
// CopyTree does), in lexical order; visit returns false to skip an entry.
func walkStat(root string, visit func(rel string, info fs.FileInfo) bool) error {
	var walk func(abs, rel string) error
	walk = func(abs, rel string) error {
		info, err := os.Stat(abs)
		if err != nil {
			return err
		}
		switch {
		case rel == "" && !info.IsDir():
			visit(".", info) // a single-file root still counts
		case rel != "" && !visit(rel, info):
			return nil
		}
		if !info.IsDir() {
			return nil
		}
		entries, err := os.ReadDir(abs)
		if err != nil {
			return err
		}
		for _, e := range entries {
			if err := walk(filepath.Join(abs, e.Name()), filepath.Join(rel, e.Name())); err != nil {
				return err
			}
		}
		return nil
	}
	return walk(root, "")
}
