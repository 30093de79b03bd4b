// Package files grants uploads and downloads of images and files, checks a
// file message against what was uploaded, and deletes what no message uses.
// The bytes never pass through a function: the gateway streams them between
// clients and the object store, on links this package signs once it has
// checked that the user takes part in the conversation.
package files

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"time"

	"easychat/pkg/blob"
	"easychat/pkg/domain"
	"easychat/pkg/filelink"
	"easychat/pkg/frame"
	"easychat/pkg/ident"
	"easychat/pkg/limit"
	"easychat/pkg/reject"
)

// Uploads records uploads and who uses them (package store).
type Uploads interface {
	AddUpload(ctx context.Context, u domain.Upload) error
	UseUpload(ctx context.Context, key, msgID string) error
	ClaimOrphans(ctx context.Context, before int64, limit int) ([]domain.Upload, error)
	DropUpload(ctx context.Context, key string) error
	// QueueDeletion hands a recalled file to the sweeper.
	QueueDeletion(ctx context.Context, key string) error
}

// Defaults of the configuration (see package deps for the variables).
const (
	DefaultMaxBytes   = 20 << 20
	DefaultLinkTTL    = 10 * time.Minute
	DefaultOrphanTTL  = time.Hour
	DefaultSweepEvery = time.Minute
	// MaxKeys bounds the files of one download request.
	MaxKeys = 100
	// sweepBatch bounds the orphans one sweep deletes.
	sweepBatch = 100
	// recallWait bounds how long a recall waits for the file store before
	// handing the file to the sweeper.
	recallWait = 5 * time.Second
)

// DefaultTypes are the media types accepted by default: the images shown
// inline, and common documents, always served as attachments.
var DefaultTypes = []string{"image/jpeg", "image/png", "image/gif", "image/webp",
	"application/pdf", "text/plain", "application/zip", "application/octet-stream"}

// Service is the file API.
type Service struct {
	Uploads Uploads
	Blobs   blob.Store
	Groups  domain.Members
	Links   filelink.Signer
	Limiter limit.Limiter
	// UploadLimit bounds the uploads one user asks for, UploadMiB the
	// mebibytes they may take (a file that a message uses stays).
	UploadLimit limit.Rule
	UploadMiB   limit.Rule
	Log         *slog.Logger
	Now         func() time.Time

	MaxBytes   int64
	Types      []string
	LinkTTL    time.Duration // life of upload and download links
	OrphanTTL  time.Duration // an upload no message uses is deleted after this
	SweepEvery time.Duration // at most one sweep this often; 0: on every call
}

// Request is the body of a call to the file function.
type Request struct {
	Action         string   `json:"action"`
	ConversationID string   `json:"conversationId,omitempty"`
	Name           string   `json:"name,omitempty"`
	Size           int64    `json:"size,omitempty"`
	Type           string   `json:"type,omitempty"`
	Keys           []string `json:"keys,omitempty"`
}

// UploadGrant is the answer to an upload: PUT the bytes to URL before
// Expires (unix ms).
type UploadGrant struct {
	Key     string `json:"key"`
	URL     string `json:"url"`
	Method  string `json:"method"`
	Expires int64  `json:"expires"`
}

// DownloadGrant maps each asked key to its link, and each image's key to
// the link of its thumbnail, valid until Expires.
type DownloadGrant struct {
	URLs    map[string]string `json:"urls"`
	Thumbs  map[string]string `json:"thumbs"`
	Expires int64             `json:"expires"`
}

// Handle runs one action for user.
func (s *Service) Handle(ctx context.Context, user string, body []byte) (any, error) {
	if !ident.IsUser(user) {
		return nil, reject.Unauthorized("sign in to send or fetch files")
	}
	var req Request
	if err := json.Unmarshal(body, &req); err != nil {
		return nil, reject.Invalid("invalid request: %v", err)
	}
	switch req.Action {
	case "upload":
		g, err := s.upload(ctx, user, req)
		if err == nil {
			s.sweepSometimes(ctx)
		}
		return g, err
	case "download":
		return s.download(ctx, user, req.Keys)
	default:
		return nil, reject.Invalid("unknown action %q (upload, download)", req.Action)
	}
}

func (s *Service) upload(ctx context.Context, user string, req Request) (UploadGrant, error) {
	if err := ident.Conversation("conversationId", req.ConversationID); err != nil {
		return UploadGrant{}, err
	}
	if err := frame.ValidFileName(req.Name); err != nil {
		return UploadGrant{}, reject.Invalid("%v", err)
	}
	max := s.maxBytes()
	switch {
	case req.Size <= 0:
		return UploadGrant{}, reject.Invalid("size: the file's size in bytes is required")
	case req.Size > max:
		return UploadGrant{}, reject.TooLarge("file too large: at most %d bytes", max)
	case !slices.Contains(s.types(), req.Type):
		return UploadGrant{}, reject.Unsupported("type not allowed: %q (allowed: %s)", ident.Clip(req.Type), strings.Join(s.types(), ", "))
	}
	if err := domain.TakesPart(ctx, s.Groups, req.ConversationID, user); err != nil {
		return UploadGrant{}, err
	}
	if err := limit.Check(ctx, s.Limiter, "file-upload:"+user, s.UploadLimit, "uploads"); err != nil {
		return UploadGrant{}, err
	}
	mib := int((req.Size + 1<<20 - 1) >> 20)
	if err := limit.CheckN(ctx, s.Limiter, "file-mib:"+user, mib, s.UploadMiB, "MiB of uploads"); err != nil {
		return UploadGrant{}, err
	}
	key := frame.FileKeyPrefix(req.ConversationID, user) + randomHex()
	now := s.now()
	if err := s.Uploads.AddUpload(ctx, domain.Upload{Key: key, Conversation: req.ConversationID, User: user,
		Name: req.Name, Size: req.Size, Type: req.Type, At: now.UnixMilli()}); err != nil {
		return UploadGrant{}, err
	}
	l := filelink.Link{Op: filelink.Put, Key: key, Expires: now.Add(s.linkTTL()).UnixMilli(),
		Size: req.Size, Type: req.Type, Name: req.Name, User: user}
	return UploadGrant{Key: key, URL: s.Links.URL(l), Method: "PUT", Expires: l.Expires}, nil
}

func (s *Service) download(ctx context.Context, user string, keys []string) (DownloadGrant, error) {
	if len(keys) == 0 || len(keys) > MaxKeys {
		return DownloadGrant{}, reject.Invalid("keys: 1-%d file keys are required", MaxKeys)
	}
	checked := map[string]bool{}
	exp := s.now().Add(s.linkTTL()).UnixMilli()
	out := DownloadGrant{URLs: make(map[string]string, len(keys)), Thumbs: map[string]string{}, Expires: exp}
	for _, k := range keys {
		conv, _, ok := frame.IsFileKey(k)
		if !ok {
			return DownloadGrant{}, reject.Invalid("keys: %q is not a file key", ident.Clip(k))
		}
		if !checked[conv] {
			if err := domain.TakesPart(ctx, s.Groups, conv, user); err != nil {
				return DownloadGrant{}, err
			}
			checked[conv] = true
		}
		// The user is named so the gateway bounds each user's downloads.
		out.URLs[k] = s.Links.URL(filelink.Link{Op: filelink.Get, Key: k, Expires: exp, User: user})
		// Any key may be an image's: the gateway serves the image itself
		// where there is no thumbnail.
		out.Thumbs[k] = s.Links.URL(filelink.Link{Op: filelink.Get, Key: k, Expires: exp, Thumb: true, User: user})
	}
	return out, nil
}

// Use checks that file f, sent by user as message msgID of type mType, is
// an upload of user's to this conversation that the store holds as
// described, and marks it used by that message (a resend of the message
// may use it again; no other message may).
func (s *Service) Use(ctx context.Context, msgID, user string, mType int, f frame.File) error {
	in, err := s.Blobs.Stat(ctx, f.Key)
	if errors.Is(err, blob.ErrNotFound) {
		return reject.NotFound("file not found: upload it first")
	}
	if err != nil {
		return err
	}
	if in.Uploader != user || in.Size != f.Size || in.Type != f.Type || in.Name != f.Name ||
		(mType == frame.ImageMsg && (in.Width != f.Width || in.Height != f.Height)) {
		return reject.Invalid("file does not match its upload (key %s)", f.Key)
	}
	return s.Uploads.UseUpload(ctx, f.Key, msgID)
}

// Remove deletes a file's bytes and its thumbnail (its message was
// recalled).
func (s *Service) Remove(ctx context.Context, key string) error {
	if err := s.Blobs.Delete(ctx, filelink.ThumbKey(key)); err != nil {
		return err
	}
	return s.Blobs.Delete(ctx, key)
}

// Recall deletes the bytes of a file whose message was recalled or, when
// the file store cannot now, hands the file to the sweeper. transfer retries
// a record that fails, holding up its partition: a file store outage must
// not stop the messages of every conversation there.
func (s *Service) Recall(ctx context.Context, key string) error {
	rctx, cancel := context.WithTimeout(ctx, recallWait)
	err := s.Remove(rctx, key)
	cancel()
	if err == nil {
		return nil
	}
	if qerr := s.Uploads.QueueDeletion(ctx, key); qerr != nil {
		return errors.Join(err, qerr)
	}
	s.log().Warn("could not delete a recalled file; the sweeper will", "key", key, "err", err)
	return nil
}

// sweepSometimes deletes orphans at most once per SweepEvery across
// replicas; a failure is logged, never the caller's.
func (s *Service) sweepSometimes(ctx context.Context) {
	if s.Limiter != nil && s.SweepEvery > 0 {
		// One sweep per period among all replicas: the first to count it.
		first, _, err := s.Limiter.Take(ctx, "files-sweep", 1, limit.Rule{N: 1, Per: s.SweepEvery})
		if err != nil || !first {
			return
		}
	}
	if n, err := s.Sweep(ctx); err != nil {
		s.log().Error("deleting orphan uploads", "deleted", n, "err", err)
	} else if n > 0 {
		s.log().Info("deleted orphan uploads", "deleted", n)
	}
}

// Sweep deletes uploads no message used within OrphanTTL (up to a batch)
// and returns how many.
func (s *Service) Sweep(ctx context.Context) (int, error) {
	ttl := s.OrphanTTL
	if ttl <= 0 {
		ttl = DefaultOrphanTTL
	}
	orphans, err := s.Uploads.ClaimOrphans(ctx, s.now().Add(-ttl).UnixMilli(), sweepBatch)
	n := 0
	for _, u := range orphans {
		if derr := s.Remove(ctx, u.Key); derr != nil {
			err = errors.Join(err, derr)
			continue // claimed: the next sweep retries it
		}
		if derr := s.Uploads.DropUpload(ctx, u.Key); derr != nil {
			err = errors.Join(err, derr)
			continue
		}
		n++
	}
	return n, err
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func (s *Service) maxBytes() int64 {
	if s.MaxBytes > 0 {
		return s.MaxBytes
	}
	return DefaultMaxBytes
}

func (s *Service) types() []string {
	if len(s.Types) > 0 {
		return s.Types
	}
	return DefaultTypes
}

func (s *Service) linkTTL() time.Duration {
	if s.LinkTTL > 0 {
		return s.LinkTTL
	}
	return DefaultLinkTTL
}

func (s *Service) log() *slog.Logger {
	if s.Log != nil {
		return s.Log
	}
	return slog.Default()
}

func randomHex() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
