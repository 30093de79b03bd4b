package blob

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"sync"
	"time"
)

// Memory is a Store in this process's memory: for tests of what sits on
// top of a store (the S3 implementation runs in the end-to-end suites).
type Memory struct {
	mu sync.Mutex
	m  map[string]memObject
}

type memObject struct {
	b  []byte
	in Info
}

// NewMemory returns an empty store.
func NewMemory() *Memory { return &Memory{m: map[string]memObject{}} }

// Put stores exactly info.Size bytes of r.
func (s *Memory) Put(_ context.Context, key string, r io.Reader, in Info) error {
	b := make([]byte, in.Size)
	if _, err := io.ReadFull(r, b); err != nil {
		return fmt.Errorf("storing %s: %w", key, err)
	}
	in.Key, in.Modified = key, time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[key] = memObject{b, in}
	return nil
}

// Stat describes the object at key.
func (s *Memory) Stat(_ context.Context, key string) (Info, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o, ok := s.m[key]
	if !ok {
		return Info{}, ErrNotFound
	}
	return o.in, nil
}

type memReader struct{ *bytes.Reader }

func (memReader) Close() error { return nil }

// Open opens the object at key.
func (s *Memory) Open(_ context.Context, key string) (Object, Info, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o, ok := s.m[key]
	if !ok {
		return nil, Info{}, ErrNotFound
	}
	return memReader{bytes.NewReader(o.b)}, o.in, nil
}

// Delete removes the object at key.
func (s *Memory) Delete(_ context.Context, key string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, key)
	return nil
}

// Bytes returns the stored bytes at key (tests).
func (s *Memory) Bytes(key string) ([]byte, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o, ok := s.m[key]
	return o.b, ok
}

// Set stores b at key as described, bypassing any checks (tests).
func (s *Memory) Set(key string, b []byte, in Info) {
	s.mu.Lock()
	defer s.mu.Unlock()
	in.Key = key
	s.m[key] = memObject{b, in}
}
