package blob

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"easychat/pkg/envconf"
	"easychat/pkg/secret"
)

// S3Config selects an S3-compatible server and bucket.
type S3Config struct {
	Endpoint  string // host:port, no scheme
	Secure    bool   // https
	Region    string
	Bucket    string
	AccessKey string
	SecretKey string
}

// S3 is a Store in one bucket of an S3-compatible server.
type S3 struct {
	c      *minio.Client
	bucket string
}

// NewS3 returns the store; it does not connect until first used.
func NewS3(cfg S3Config) (*S3, error) {
	if cfg.Endpoint == "" || cfg.Bucket == "" {
		return nil, errors.New("s3: an endpoint and a bucket are required")
	}
	c, err := minio.New(cfg.Endpoint, &minio.Options{
		Creds:  credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, ""),
		Secure: cfg.Secure,
		Region: cfg.Region,
		// Path-style requests: they work with every S3-compatible server,
		// whatever its DNS.
		BucketLookup: minio.BucketLookupPath,
	})
	if err != nil {
		return nil, fmt.Errorf("s3 client for %s: %w", cfg.Endpoint, err)
	}
	return &S3{c: c, bucket: cfg.Bucket}, nil
}

// EnsureBucket creates the bucket if it does not exist (the dev stack's
// embedded server starts empty; in production the operator creates it).
func (s *S3) EnsureBucket(ctx context.Context, region string) error {
	ok, err := s.c.BucketExists(ctx, s.bucket)
	if err != nil {
		return fmt.Errorf("checking bucket %s: %w", s.bucket, err)
	}
	if ok {
		return nil
	}
	if err := s.c.MakeBucket(ctx, s.bucket, minio.MakeBucketOptions{Region: region}); err != nil {
		return fmt.Errorf("creating bucket %s: %w", s.bucket, err)
	}
	return nil
}

// User metadata keys (x-amz-meta-*). The name is query-escaped: header
// values carry ASCII only.
const (
	metaName     = "Name"
	metaUploader = "Uploader"
	metaWidth    = "Width"
	metaHeight   = "Height"
)

// Put stores the object with its description as metadata.
func (s *S3) Put(ctx context.Context, key string, r io.Reader, info Info) error {
	meta := map[string]string{metaName: url.QueryEscape(info.Name), metaUploader: info.Uploader}
	if info.Width > 0 {
		meta[metaWidth], meta[metaHeight] = strconv.Itoa(info.Width), strconv.Itoa(info.Height)
	}
	_, err := s.c.PutObject(ctx, s.bucket, key, r, info.Size, minio.PutObjectOptions{
		ContentType:  info.Type,
		UserMetadata: meta,
		// One request for up to the part size: uploads are bounded far
		// below it, so there is no multipart upload to leave behind.
		PartSize: 64 << 20,
	})
	if err != nil {
		return fmt.Errorf("storing %s: %w", key, err)
	}
	return nil
}

// Stat describes the object.
func (s *S3) Stat(ctx context.Context, key string) (Info, error) {
	oi, err := s.c.StatObject(ctx, s.bucket, key, minio.StatObjectOptions{})
	if err != nil {
		return Info{}, notFound(err, "describing "+key)
	}
	return info(key, oi), nil
}

// Open opens the object with one GET: its answer's headers describe the
// object (a missing key fails here, before callers write anything) and its
// body is read as the caller reads. Seeks go to the server only when a
// read follows at another offset (range requests).
func (s *S3) Open(ctx context.Context, key string) (Object, Info, error) {
	o, err := s.c.GetObject(ctx, s.bucket, key, minio.GetObjectOptions{})
	if err != nil {
		return nil, Info{}, notFound(err, "opening "+key)
	}
	oi, err := o.Stat()
	if err != nil {
		o.Close()
		return nil, Info{}, notFound(err, "opening "+key)
	}
	return &s3Object{o: o, size: oi.Size}, info(key, oi), nil
}

// s3Object defers seeks to the next read: http.ServeContent seeks to the
// end and back to learn the size, which minio's object would answer with
// a second GET.
type s3Object struct {
	o        *minio.Object
	size     int64
	off, pos int64 // where the caller is, where the open stream is
}

func (s *s3Object) Read(p []byte) (int, error) {
	if s.off != s.pos {
		if _, err := s.o.Seek(s.off, io.SeekStart); err != nil {
			return 0, err
		}
		s.pos = s.off
	}
	n, err := s.o.Read(p)
	s.off += int64(n)
	s.pos = s.off
	return n, err
}

func (s *s3Object) Seek(offset int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += s.off
	case io.SeekEnd:
		offset += s.size
	default:
		return 0, fmt.Errorf("seek: bad whence %d", whence)
	}
	if offset < 0 {
		return 0, errors.New("seek: negative position")
	}
	s.off = offset
	return offset, nil
}

func (s *s3Object) Close() error { return s.o.Close() }

// Delete removes the object.
func (s *S3) Delete(ctx context.Context, key string) error {
	if err := s.c.RemoveObject(ctx, s.bucket, key, minio.RemoveObjectOptions{}); err != nil {
		if errors.Is(notFound(err, ""), ErrNotFound) {
			return nil
		}
		return fmt.Errorf("deleting %s: %w", key, err)
	}
	return nil
}

func notFound(err error, doing string) error {
	resp := minio.ToErrorResponse(err)
	if resp.StatusCode == http.StatusNotFound || resp.Code == "NoSuchKey" {
		return ErrNotFound
	}
	return fmt.Errorf("%s: %w", doing, err)
}

func info(key string, oi minio.ObjectInfo) Info {
	in := Info{Key: key, Size: oi.Size, Type: oi.ContentType, Modified: oi.LastModified}
	get := func(k string) string {
		for mk, v := range oi.UserMetadata {
			if strings.EqualFold(mk, k) || strings.EqualFold(mk, "X-Amz-Meta-"+k) {
				return v
			}
		}
		return ""
	}
	in.Name, _ = url.QueryUnescape(get(metaName))
	in.Uploader = get(metaUploader)
	in.Width, _ = strconv.Atoi(get(metaWidth))
	in.Height, _ = strconv.Atoi(get(metaHeight))
	return in
}

// Development credentials of the embedded S3 server, used only with the
// development switch (package secret).
const (
	DevAccessKey = "easychat-dev-s3-access"
	DevSecretKey = "easychat-dev-s3-secret-key"
)

// ConfigFromEnv reads the S3 settings every component that touches files
// shares, with defaults in brackets:
//
//	S3_ENDPOINT  [127.0.0.1:9000]  host:port of the S3 API
//	S3_SECURE    [false]           https
//	S3_REGION    [us-east-1]
//	S3_BUCKET    [easychat]
//
// and the credentials from the secrets s3-access-key and s3-secret-key (or
// S3_ACCESS_KEY, S3_SECRET_KEY); missing credentials are an error unless
// the development switch is on.
func ConfigFromEnv(r *envconf.Reader) (S3Config, error) {
	c := S3Config{
		Endpoint: r.String("S3_ENDPOINT", "127.0.0.1:9000"),
		Region:   r.String("S3_REGION", "us-east-1"),
		Bucket:   r.String("S3_BUCKET", "easychat"),
	}
	switch v := strings.ToLower(r.String("S3_SECURE", "false")); v {
	case "true", "1", "yes":
		c.Secure = true
	case "false", "0", "no":
	default:
		r.Fail("S3_SECURE", errors.New("want true or false"))
	}
	// The access key is an identifier, not a secret: any length will do.
	var err1, err2 error
	c.AccessKey = secret.Read(secret.S3AccessKey, "S3_ACCESS_KEY", "")
	if c.AccessKey == "" {
		c.AccessKey, err1 = secret.Check(secret.S3AccessKey, "S3_ACCESS_KEY", "", DevAccessKey)
	}
	c.SecretKey, err2 = secret.Require(secret.S3SecretKey, "S3_SECRET_KEY", DevSecretKey)
	return c, errors.Join(err1, err2)
}
