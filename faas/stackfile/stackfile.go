// Package stackfile reads faas-cli stack files (stack.yml) to find where a
// deployed function's source lives, the way `faas-cli build` does.
package stackfile

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/drone/envsubst"
	"gopkg.in/yaml.v3"
)

// Function is one entry of `functions:` resolved against its stack file.
type Function struct {
	Name  string
	Lang  string
	Image string
	// Handler is the absolute path of the handler folder.
	Handler string
	// StackDir is the absolute folder of the stack file; `configuration.copy`
	// paths are relative to it and must stay inside it (as in faas-cli).
	StackDir string
	// Copy lists the stack file's `configuration.copy` paths, relative to StackDir.
	Copy []string
	// StackFile is the stack file this function was found in, for messages.
	StackFile string
}

// Stack is the parsed content of one or more stack files.
type Stack struct {
	Functions []Function
	Files     []string
}

// ErrNotFound is returned by Lookup when no stack file declares the function.
var ErrNotFound = errors.New("function not declared in any stack file")

type fileSchema struct {
	Configuration struct {
		Copy []string `yaml:"copy"`
	} `yaml:"configuration"`
	Functions map[string]struct {
		Lang    string `yaml:"lang"`
		Handler string `yaml:"handler"`
		Image   string `yaml:"image"`
	} `yaml:"functions"`
}

// Parse reads the stack files in order. Environment variables are substituted
// first, as faas-cli does, so `image: ${REGISTRY:-x}/y` matches what faas-cli sends.
func Parse(paths []string) (*Stack, error) {
	st := &Stack{}
	for _, p := range paths {
		fns, err := parseFile(p)
		if err != nil {
			return nil, err
		}
		st.Files = append(st.Files, p)
		st.Functions = append(st.Functions, fns...)
	}
	return st, nil
}

func parseFile(path string) ([]Function, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("resolving stack file %s: %w", path, err)
	}
	raw, err := os.ReadFile(abs)
	if err != nil {
		return nil, fmt.Errorf("reading stack file: %w", err)
	}
	text, err := envsubst.Eval(string(raw), func(k string) string { return os.Getenv(k) })
	if err != nil {
		return nil, fmt.Errorf("substituting environment in %s: %w", abs, err)
	}
	var doc fileSchema
	if err := yaml.Unmarshal([]byte(text), &doc); err != nil {
		return nil, fmt.Errorf("parsing stack file %s: %w", abs, err)
	}
	dir := filepath.Dir(abs)
	for _, c := range doc.Configuration.Copy {
		if _, err := InScope(dir, c); err != nil {
			return nil, fmt.Errorf("stack file %s: configuration.copy: %w", abs, err)
		}
	}

	names := make([]string, 0, len(doc.Functions))
	for n := range doc.Functions {
		names = append(names, n)
	}
	sort.Strings(names) // stable order for image fallback and messages
	fns := make([]Function, 0, len(names))
	for _, n := range names {
		f := doc.Functions[n]
		h := f.Handler
		if h != "" && !filepath.IsAbs(h) {
			h = filepath.Join(dir, h)
		}
		fns = append(fns, Function{
			Name:      n,
			Lang:      f.Lang,
			Image:     f.Image,
			Handler:   filepath.Clean(h),
			StackDir:  dir,
			Copy:      append([]string(nil), doc.Configuration.Copy...),
			StackFile: abs,
		})
	}
	return fns, nil
}

// Lookup finds the function a deploy request refers to: by service name first,
// then by image, because a service may be deployed under another name.
func (s *Stack) Lookup(service, image string) (Function, error) {
	for _, f := range s.Functions {
		if f.Name == service {
			return f, nil
		}
	}
	if image != "" {
		for _, f := range s.Functions {
			if f.Image == image {
				return f, nil
			}
		}
	}
	return Function{}, fmt.Errorf("%w: service %q (image %q) is not in %s",
		ErrNotFound, service, image, strings.Join(s.Files, ", "))
}

// InScope returns the absolute path of rel inside dir, refusing paths that
// escape dir or name dir itself, the rule faas-cli applies to configuration.copy.
func InScope(dir, rel string) (string, error) {
	if filepath.IsAbs(rel) {
		return "", fmt.Errorf("path %q must be relative to the stack file", rel)
	}
	abs := filepath.Join(dir, filepath.FromSlash(rel))
	if abs == filepath.Clean(dir) {
		return "", fmt.Errorf("path %q is the whole project", rel)
	}
	if !strings.HasPrefix(abs, filepath.Clean(dir)+string(filepath.Separator)) {
		return "", fmt.Errorf("path %q is outside the stack file's folder", rel)
	}
	return abs, nil
}
