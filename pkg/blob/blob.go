// Package blob keeps the bytes of images and files in an object store. Store
// is what the services need of one; S3 implements it on any S3-compatible
// server (the embedded one of the dev stack, MinIO, AWS S3, …), so the
// embedded default and production differ only in the endpoint.
package blob

import (
	"context"
	"errors"
	"io"
	"time"
)

// ErrNotFound is returned for a key the store does not hold.
var ErrNotFound = errors.New("no such object")

// Info describes a stored object. Type is the media type found in its
// bytes, never one a client declared; Name is the name it was uploaded as;
// Width and Height are an image's pixels.
type Info struct {
	Key      string
	Size     int64
	Type     string
	Name     string
	Uploader string
	Width    int
	Height   int
	Modified time.Time
}

// Object is an open object: readable, seekable (for range requests).
type Object interface {
	io.ReadSeekCloser
}

// Store is an object store.
type Store interface {
	// Put stores exactly info.Size bytes of r under key, described by info.
	Put(ctx context.Context, key string, r io.Reader, info Info) error
	// Stat describes the object at key (ErrNotFound if there is none).
	Stat(ctx context.Context, key string) (Info, error)
	// Open opens the object at key for reading.
	Open(ctx context.Context, key string) (Object, Info, error)
	// Delete removes the object at key; a missing one is not an error.
	Delete(ctx context.Context, key string) error
}
