package files

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"easychat/pkg/blob"
	"easychat/pkg/domain"
	"easychat/pkg/filelink"
	"easychat/pkg/frame"
	"easychat/pkg/limit"
	"easychat/pkg/reject"
)

type fakeUploads struct {
	ups  map[string]domain.Upload
	used map[string]string
	down error // QueueDeletion fails with it
}

func (f *fakeUploads) AddUpload(_ context.Context, u domain.Upload) error {
	f.ups[u.Key] = u
	return nil
}
func (f *fakeUploads) UseUpload(_ context.Context, key, msgID string) error {
	if m, ok := f.used[key]; ok && m != msgID {
		return reject.Conflict("already sent")
	}
	f.used[key] = msgID
	delete(f.ups, key)
	return nil
}
func (f *fakeUploads) ClaimOrphans(_ context.Context, before int64, limit int) ([]domain.Upload, error) {
	var out []domain.Upload
	for _, u := range f.ups {
		if u.At < before && len(out) < limit {
			out = append(out, u)
		}
	}
	return out, nil
}
func (f *fakeUploads) DropUpload(_ context.Context, key string) error { delete(f.ups, key); return nil }
func (f *fakeUploads) QueueDeletion(_ context.Context, key string) error {
	if f.down != nil {
		return f.down
	}
	f.used[key] = ""
	f.ups[key] = domain.Upload{Key: key}
	return nil
}

type fakeBlobs struct {
	m    map[string]blob.Info
	down error // Delete fails with it
}

func (b *fakeBlobs) Put(context.Context, string, io.Reader, blob.Info) error { return nil }
func (b *fakeBlobs) Stat(_ context.Context, key string) (blob.Info, error) {
	in, ok := b.m[key]
	if !ok {
		return in, blob.ErrNotFound
	}
	return in, nil
}
func (b *fakeBlobs) Open(context.Context, string) (blob.Object, blob.Info, error) {
	return nil, blob.Info{}, errors.New("unused")
}
func (b *fakeBlobs) Delete(_ context.Context, key string) error {
	if b.down != nil {
		return b.down
	}
	delete(b.m, key)
	return nil
}

type members map[string]bool

func (m members) IsMember(_ context.Context, group, user string) (bool, error) {
	if group == "g-none" {
		return false, reject.NotFound("no group")
	}
	return m[group+"/"+user], nil
}

func service() (*Service, *fakeUploads, *fakeBlobs, *time.Time) {
	now := time.UnixMilli(1_800_000_000_000)
	ups := &fakeUploads{ups: map[string]domain.Upload{}, used: map[string]string{}}
	bl := &fakeBlobs{m: map[string]blob.Info{}}
	s := &Service{Uploads: ups, Blobs: bl, Groups: members{"g-team/alice": true}, Links: filelink.New("k-0123456789abcdef"),
		Now: func() time.Time { return now }, OrphanTTL: time.Hour}
	return s, ups, bl, &now
}

func call(t *testing.T, s *Service, user string, req map[string]any) (any, error) {
	b, _ := json.Marshal(req)
	return s.Handle(context.Background(), user, b)
}

func TestUploadGrants(t *testing.T) {
	s, ups, _, _ := service()
	out, err := call(t, s, "alice", map[string]any{"action": "upload", "conversationId": "alice_bob", "name": "a.png", "size": 10, "type": "image/png"})
	if err != nil {
		t.Fatal(err)
	}
	g := out.(UploadGrant)
	if !strings.HasPrefix(g.Key, "alice_bob/alice/") || !strings.HasPrefix(g.URL, "/files/"+g.Key+"?t=") || ups.ups[g.Key].Size != 10 {
		t.Fatalf("grant %+v, record %+v", g, ups.ups[g.Key])
	}
	for name, c := range map[string]struct {
		user string
		req  map[string]any
		want error
	}{
		"anonymous":      {"", map[string]any{"action": "upload"}, reject.ErrUnauthorized},
		"unknown action": {"alice", map[string]any{"action": "delete"}, reject.ErrInvalid},
		"not a party":    {"carol", map[string]any{"action": "upload", "conversationId": "alice_bob", "name": "a", "size": 1, "type": "text/plain"}, reject.ErrForbidden},
		"not a member":   {"bob", map[string]any{"action": "upload", "conversationId": "g-team", "name": "a", "size": 1, "type": "text/plain"}, reject.ErrForbidden},
		"no group":       {"bob", map[string]any{"action": "upload", "conversationId": "g-none", "name": "a", "size": 1, "type": "text/plain"}, reject.ErrNotFound},
		"too large":      {"alice", map[string]any{"action": "upload", "conversationId": "alice_bob", "name": "a", "size": DefaultMaxBytes + 1, "type": "text/plain"}, reject.ErrTooLarge},
		"type":           {"alice", map[string]any{"action": "upload", "conversationId": "alice_bob", "name": "a", "size": 1, "type": "text/html"}, reject.ErrUnsupported},
		"name":           {"alice", map[string]any{"action": "upload", "conversationId": "alice_bob", "name": "a/b", "size": 1, "type": "text/plain"}, reject.ErrInvalid},
		"conversation":   {"alice", map[string]any{"action": "upload", "conversationId": "nope", "name": "a", "size": 1, "type": "text/plain"}, reject.ErrInvalid},
		"no keys":        {"alice", map[string]any{"action": "download"}, reject.ErrInvalid},
		"many keys":      {"alice", map[string]any{"action": "download", "keys": make([]string, MaxKeys+1)}, reject.ErrInvalid},
		"other's files":  {"carol", map[string]any{"action": "download", "keys": []string{g.Key}}, reject.ErrForbidden},
	} {
		if _, err := call(t, s, c.user, c.req); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", name, err, c.want)
		}
	}
	out, err = call(t, s, "bob", map[string]any{"action": "download", "keys": []string{g.Key}})
	if err != nil || out.(DownloadGrant).URLs[g.Key] == "" {
		t.Fatalf("member download: %+v, %v", out, err)
	}
	// The links name who got them: the gateway bounds each user's downloads.
	for _, u := range []string{out.(DownloadGrant).URLs[g.Key], out.(DownloadGrant).Thumbs[g.Key]} {
		_, q, _ := strings.Cut(u, "?t=")
		tok, _ := url.QueryUnescape(q)
		l, err := s.Links.Verify(tok, filelink.Get, g.Key, s.now())
		if err != nil || l.User != "bob" {
			t.Fatalf("download link %q: %+v, %v", u, l, err)
		}
	}
}

func TestUseChecksTheStoredFile(t *testing.T) {
	s, ups, bl, _ := service()
	key := "alice_bob/alice/0123456789abcdef0123456789abcdef"
	f := frame.File{Key: key, Name: "a.png", Size: 10, Type: "image/png", Width: 3, Height: 2}
	ctx := context.Background()
	if err := s.Use(ctx, "m1", "alice", frame.ImageMsg, f); !errors.Is(err, reject.ErrNotFound) {
		t.Fatalf("not uploaded: %v", err)
	}
	bl.m[key] = blob.Info{Key: key, Size: 10, Type: "image/png", Name: "a.png", Uploader: "alice", Width: 3, Height: 2}
	for name, g := range map[string]frame.File{
		"size":  {Key: key, Name: "a.png", Size: 11, Type: "image/png", Width: 3, Height: 2},
		"type":  {Key: key, Name: "a.png", Size: 10, Type: "image/gif", Width: 3, Height: 2},
		"width": {Key: key, Name: "a.png", Size: 10, Type: "image/png", Width: 30, Height: 2},
		"name":  {Key: key, Name: "b.png", Size: 10, Type: "image/png", Width: 3, Height: 2},
	} {
		if err := s.Use(ctx, "m1", "alice", frame.ImageMsg, g); !errors.Is(err, reject.ErrInvalid) {
			t.Errorf("%s differs: %v", name, err)
		}
	}
	if err := s.Use(ctx, "m1", "alice", frame.ImageMsg, f); err != nil || ups.used[key] != "m1" {
		t.Fatalf("use: %v %v", err, ups.used)
	}
	if err := s.Use(ctx, "m2", "alice", frame.ImageMsg, f); !errors.Is(err, reject.ErrConflict) {
		t.Fatalf("second message: %v", err)
	}
}

func TestSweepDeletesOnlyOldUnusedUploads(t *testing.T) {
	s, ups, bl, now := service()
	old := now.Add(-2 * time.Hour).UnixMilli()
	for _, k := range []string{"a", "b"} {
		ups.ups[k] = domain.Upload{Key: k, At: old}
		bl.m[k] = blob.Info{Key: k}
	}
	ups.ups["new"] = domain.Upload{Key: "new", At: now.UnixMilli()}
	bl.m["new"] = blob.Info{Key: "new"}
	n, err := s.Sweep(context.Background())
	if err != nil || n != 2 {
		t.Fatalf("Sweep = %d, %v", n, err)
	}
	if _, ok := bl.m["new"]; !ok || len(bl.m) != 1 || len(ups.ups) != 1 {
		t.Fatalf("left %v and %v", bl.m, ups.ups)
	}
}

// A recall while the file store is down hands the file to the sweeper
// instead of failing (transfer would retry, holding up its partition); the
// next sweep deletes it.
func TestRecallWhileTheFileStoreIsDown(t *testing.T) {
	s, ups, bl, _ := service()
	ctx := context.Background()
	key := "alice_bob/alice/0123456789abcdef0123456789abcdef"
	bl.m[key] = blob.Info{Key: key, Size: 10, Type: "text/plain", Name: "a.txt", Uploader: "alice"}
	ups.used[key] = "m1"
	bl.down = errors.New("connection refused")
	if err := s.Recall(ctx, key); err != nil {
		t.Fatalf("recall while the file store is down: %v", err)
	}
	if _, ok := bl.m[key]; !ok {
		t.Fatal("deleted although the store is down")
	}
	if _, ok := ups.ups[key]; !ok || ups.used[key] != "" {
		t.Fatalf("not handed to the sweeper: upload %v, used by %q", ups.ups[key], ups.used[key])
	}
	bl.down = nil
	if n, err := s.Sweep(ctx); err != nil || n != 1 {
		t.Fatalf("sweep: %d, %v", n, err)
	}
	if _, ok := bl.m[key]; ok {
		t.Fatal("the sweep left the recalled file")
	}
	// With the database down too, the recall fails: transfer retries it.
	bl.m[key] = blob.Info{Key: key}
	bl.down, ups.down = errors.New("connection refused"), errors.New("no database")
	if err := s.Recall(ctx, key); err == nil {
		t.Fatal("a recall neither deleted nor queued succeeded")
	}
}

// A user's uploads are bounded in number and in mebibytes (by declared
// size, each file rounded up): a member filling the store with the largest
// files is refused (429) before the count would stop them.
func TestUploadsAreLimitedInCountAndBytes(t *testing.T) {
	s, _, _, _ := service()
	s.Limiter = limit.NewMemory()
	s.UploadLimit, s.UploadMiB = limit.Rule{N: 5, Per: time.Hour}, limit.Rule{N: 50, Per: time.Hour}
	up := func(user string, size int64) error {
		_, err := call(t, s, user, map[string]any{"action": "upload", "conversationId": "alice_bob", "name": "a.zip", "size": size, "type": "application/zip"})
		return err
	}
	for i, size := range []int64{DefaultMaxBytes, DefaultMaxBytes, 9<<20 + 1} { // 20 + 20 + 10 MiB
		if err := up("alice", size); err != nil {
			t.Fatalf("upload %d within the limits: %v", i, err)
		}
	}
	err := up("alice", 1)
	if reject.Status(err) != http.StatusTooManyRequests || !strings.Contains(err.Error(), "MiB of uploads") {
		t.Fatalf("over 50 MiB: %v", err)
	}
	if err := up("bob", DefaultMaxBytes); err != nil {
		t.Fatalf("another user: %v", err)
	}
	for range 4 {
		_ = up("bob", 1)
	}
	if err := up("bob", 1); reject.Status(err) != http.StatusTooManyRequests || !strings.Contains(err.Error(), "uploads") {
		t.Fatalf("a sixth upload: %v", err)
	}
}
