package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	_ "image/gif" // image.DecodeConfig of the image types the server takes
	_ "image/jpeg"
	_ "image/png"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	_ "golang.org/x/image/webp"

	"easychat/pkg/frame"
)

// maxFileBytes is the server's default bound on a file (FILE_MAX_BYTES):
// a bigger one is refused here, before asking for an upload.
const maxFileBytes = 20 << 20

// transferTimeout bounds one upload or download (the gateway's default
// bound on /files/ is the same).
const transferTimeout = 5 * time.Minute

// linkMargin is how long before it expires a cached download link is
// asked for again.
const linkMargin = 30 * time.Second

// maxSavedName bounds the name /get saves under, in bytes, leaving room
// for " (n)" within the usual 255-byte limit of file systems.
const maxSavedName = 200

// fileOf reads the file an image or file message carries. ok is false for
// text, for a recalled message, and for content that is no file of this
// conversation. The name is taken as it is: it is escaped when shown and
// cleaned when saved, so a hostile one (the server checks names, but this
// client does not rely on it) can still be seen and fetched safely.
func fileOf(m Message) (frame.File, bool) {
	if m.MType == frame.TextMsg || m.Recalled {
		return frame.File{}, false
	}
	f, ok := decodeFile(m.Content)
	if !ok {
		return frame.File{}, false
	}
	// /get asks for the key: only ever one of this conversation's.
	if conv, _, ok := frame.IsFileKey(f.Key); !ok || conv != m.ConvID {
		return frame.File{}, false
	}
	return f, true
}

// decodeFile reads the content of a file message.
func decodeFile(content string) (frame.File, bool) {
	var f frame.File
	if json.Unmarshal([]byte(content), &f) != nil || f.Size <= 0 {
		return frame.File{}, false
	}
	return f, true
}

// previewText is what a quote of m shows: its text, or its file's name
// (as the server's previews do).
func previewText(m Message) string {
	if m.MType == frame.TextMsg {
		return m.Content
	}
	f, _ := decodeFile(m.Content)
	return f.Name
}

// summary is a message in a few words, for the conversation list: its
// text, "[image]" or "[file] name".
func summary(mType int, content string) string {
	switch mType {
	case frame.TextMsg:
		return content
	case frame.ImageMsg:
		return "[image]"
	case frame.FileMsg:
		if f, ok := decodeFile(content); ok {
			return "[file] " + f.Name
		}
		return "[file]"
	}
	return fmt.Sprintf("[message of type %d]", mType)
}

// sentSummary is one of my messages as "✓ #3 in @bob: …" shows it.
func sentSummary(m Message) string {
	if f, ok := fileOf(m); ok {
		return fileLabel(m.MType, f)
	}
	return oneLine(summary(m.MType, m.Content), 40)
}

// kindName names a message type in a sentence.
func kindName(mType int) string {
	switch mType {
	case frame.ImageMsg:
		return "an image"
	case frame.FileMsg:
		return "a file"
	}
	return fmt.Sprintf("a message of type %d", mType)
}

// fileLine is the body of an image or file message's line: "[image
// chart.png 47.1 KB 640×480]  /get #12". The name comes from the sender and
// is escaped (a line break in it too): the line stays one line. Links are
// asked for only by /get, not for every message shown.
func fileLine(m Message) string {
	f, ok := fileOf(m)
	switch {
	case !ok && (m.MType == frame.ImageMsg || m.MType == frame.FileMsg):
		return fmt.Sprintf("[%s whose description cannot be read]", kindName(m.MType))
	case !ok:
		return fmt.Sprintf("[%s, which this client cannot show]", kindName(m.MType))
	}
	s := fileLabel(m.MType, f)
	if m.Seq > 0 {
		s += fmt.Sprintf("  /get #%d", m.Seq)
	}
	return s
}

// fileLabel is "[image chart.png 47.1 KB 640×480]" or "[file report.pdf
// 1.2 MB]", escaped.
func fileLabel(mType int, f frame.File) string {
	if mType == frame.ImageMsg {
		return printable(fmt.Sprintf("[image %s %s %d×%d]", f.Name, humanSize(f.Size), f.Width, f.Height))
	}
	return printable(fmt.Sprintf("[file %s %s]", f.Name, humanSize(f.Size)))
}

// humanSize is a size in bytes as people read it: "512 B", "47.1 KB",
// "1.2 MB" (units of 1024).
func humanSize(n int64) string {
	if n < 1024 {
		return fmt.Sprintf("%d B", n)
	}
	v := float64(n) / 1024
	for _, unit := range []string{"KB", "MB", "GB"} {
		if v < 1023.95 || unit == "GB" {
			return fmt.Sprintf("%.1f %s", v, unit)
		}
		v /= 1024
	}
	return "" // not reached
}

// fileKind is how a file is sent: its media type as the gateway sniffs it
// (which must match what is declared), and for a jpeg/png/gif/webp an
// image message with its width and height.
type fileKind struct {
	MType         int
	Type          string
	Width, Height int
}

// chooseKind picks how data is sent. An image whose header cannot be read
// is refused here, as the gateway would refuse it.
func chooseKind(data []byte) (fileKind, error) {
	t := frame.SniffType(data)
	if !frame.ImageTypes[t] {
		return fileKind{MType: frame.FileMsg, Type: t}, nil
	}
	c, _, err := image.DecodeConfig(bytes.NewReader(data))
	if err != nil {
		return fileKind{}, fmt.Errorf("it looks like %s, but its image header cannot be read", t)
	}
	if c.Width <= 0 || c.Height <= 0 || c.Width > frame.MaxImageSide || c.Height > frame.MaxImageSide {
		return fileKind{}, fmt.Errorf("the image is %d×%d: at most %d pixels a side can be sent", c.Width, c.Height, frame.MaxImageSide)
	}
	return fileKind{MType: frame.ImageMsg, Type: t, Width: c.Width, Height: c.Height}, nil
}

// uploadName is the name a file is sent under: its base name, or, when
// the server would refuse that (control characters, too long), a cleaned
// one; changed says which.
func uploadName(base string) (name string, changed bool) {
	if frame.ValidFileName(base) == nil {
		return base, false
	}
	return safeName(base), true
}

// sendFile uploads the file at path and sends it to the open conversation
// as an image or file message. The upload runs before the next command, so
// what is typed after it is sent after it.
func (a *App) sendFile(ctx context.Context, path string) error {
	id := a.openID()
	if id == "" {
		return errors.New("no open conversation: /open <userId|groupId> first (/help)")
	}
	path = expandHome(path)
	st, err := os.Stat(path)
	switch {
	case err != nil:
		return err
	case st.IsDir():
		return fmt.Errorf("%s is a directory: /send takes one file", path)
	case !st.Mode().IsRegular():
		return fmt.Errorf("%s is not a regular file", path)
	case st.Size() == 0:
		return fmt.Errorf("%s is empty: nothing to send", path)
	case st.Size() > maxFileBytes:
		return fmt.Errorf("%s is too large: %d bytes (%s), at most %d (20 MiB) can be sent", path, st.Size(), humanSize(st.Size()), maxFileBytes)
	}
	data, err := readAtMost(path, maxFileBytes)
	if err != nil {
		return err
	}
	kind, err := chooseKind(data)
	if err != nil {
		return fmt.Errorf("%s not sent: %w", filepath.Base(path), err)
	}
	name, renamed := uploadName(filepath.Base(path))
	if renamed {
		a.Out.Println(printable(fmt.Sprintf("  (the name has characters the server refuses: sending it as %s)", name)))
	}
	c, _ := a.Store.Conv(id)
	a.Out.Println(printable(fmt.Sprintf("  ↑ uploading %s (%s, %s) to %s…", name, humanSize(int64(len(data))), kind.Type, c.Title())))
	f, err := a.API.Upload(ctx, c.ID, name, kind.Type, data)
	if err != nil {
		return uploadError(name, kind.Type, err)
	}
	// What the gateway stored is what the chat function checks the
	// message against.
	if f.Type == "" {
		f.Type, f.Width, f.Height = kind.Type, kind.Width, kind.Height
	}
	if f.Size == 0 {
		f.Size = int64(len(data))
	}
	f.Name = name
	mType := frame.FileMsg
	if frame.ImageTypes[f.Type] && f.Width > 0 && f.Height > 0 {
		mType = frame.ImageMsg
	}
	content, err := json.Marshal(f)
	if err != nil {
		return err
	}
	// The chat function's own check, here first: a refusal reads better
	// before the message is queued.
	if _, err := frame.ParseFile(mType, string(content), c.ID, a.Me); err != nil {
		return fmt.Errorf("%s not sent: %w", name, err)
	}
	return a.enqueue(ctx, c, frame.Msg{MType: mType, Content: string(content)}, nil)
}

// readAtMost reads the file at path, refusing it if it holds more than n
// bytes (it may have grown since it was looked at).
func readAtMost(path string, n int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, n+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > n {
		return nil, fmt.Errorf("%s is too large: more than %d bytes (20 MiB) cannot be sent", path, n)
	}
	if len(data) == 0 {
		return nil, fmt.Errorf("%s is empty: nothing to send", path)
	}
	return data, nil
}

// uploadError says plainly why an upload was refused.
func uploadError(name, typ string, err error) error {
	var ae *APIError
	if errors.As(err, &ae) && ae.Status == http.StatusUnsupportedMediaType && strings.Contains(ae.Msg, "type not allowed") {
		msg := fmt.Sprintf("%s not sent: the server does not take files of type %s", name, typ)
		if _, allowed, ok := strings.Cut(ae.Msg, "(allowed: "); ok {
			msg += " (it takes " + strings.TrimSuffix(allowed, ")") + ")"
		}
		return errors.New(msg)
	}
	return fmt.Errorf("%s not sent: %w", name, err)
}

// getFile saves the file of message #seq of the open conversation: to
// dest if given (a directory, or a file path), else under its name in the
// current directory. Existing files are never overwritten.
func (a *App) getFile(ctx context.Context, seq int64, dest string) error {
	_, m, err := a.lookup(ctx, seq)
	if err != nil {
		return err
	}
	switch {
	case m.Recalled:
		return fmt.Errorf("#%d was recalled: its file is gone", seq)
	case m.MType == frame.TextMsg:
		return fmt.Errorf("#%d is a text message: nothing to download", seq)
	}
	f, ok := fileOf(m)
	if !ok {
		return fmt.Errorf("#%d: the description of its file cannot be read", seq)
	}
	dir, name := destination(dest, f.Name)
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return fmt.Errorf("cannot save into %s: not a directory", dir)
	}
	var body io.ReadCloser
	for attempt := 0; ; attempt++ {
		link, err := a.downloadLink(ctx, f.Key)
		if err != nil {
			return fmt.Errorf("#%d: %w", seq, err)
		}
		body, err = a.API.Open(ctx, link)
		var ae *APIError
		if errors.As(err, &ae) && ae.Status == http.StatusForbidden && attempt == 0 {
			a.forgetLink(f.Key) // expired early (a clock apart): ask once more
			continue
		}
		if errors.As(err, &ae) && ae.Status == http.StatusNotFound {
			return fmt.Errorf("#%d: the file is gone (recalled or deleted)", seq)
		}
		if err != nil {
			return fmt.Errorf("#%d: %w", seq, err)
		}
		break
	}
	defer body.Close()
	out, path, err := createUnique(dir, name)
	if err != nil {
		return err
	}
	// Exactly the size the message declares: more or less is not its file.
	n, err := io.Copy(out, io.LimitReader(body, f.Size+1))
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err == nil && n != f.Size {
		err = fmt.Errorf("got %d bytes, the message declares %d", n, f.Size)
	}
	if err != nil {
		os.Remove(path)
		return fmt.Errorf("#%d not saved: %w", seq, err)
	}
	if abs, err := filepath.Abs(path); err == nil {
		path = abs
	}
	a.Out.Println(printable(fmt.Sprintf("  ↓ saved #%d to %s (%s)", seq, path, humanSize(n))))
	return nil
}

// cachedLink is a download link and when to stop using it.
type cachedLink struct {
	url     string
	expires time.Time
}

// downloadLink returns a link for key, cached until shortly before it
// expires.
func (a *App) downloadLink(ctx context.Context, key string) (string, error) {
	now := a.now()
	a.mu.Lock()
	l, ok := a.links[key]
	a.mu.Unlock()
	if ok && now.Before(l.expires) {
		return l.url, nil
	}
	urls, expires, err := a.API.DownloadLinks(ctx, []string{key})
	if err != nil {
		return "", err
	}
	u := urls[key]
	if u == "" {
		return "", errors.New("the server gave no download link")
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.links == nil {
		a.links = map[string]cachedLink{}
	}
	for k, l := range a.links {
		if !now.Before(l.expires) {
			delete(a.links, k)
		}
	}
	a.links[key] = cachedLink{url: u, expires: time.UnixMilli(expires).Add(-linkMargin)}
	return u, nil
}

func (a *App) forgetLink(key string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.links, key)
}

// destination is where /get saves: a directory and a name in it. The
// name the server gives is the sender's and untrusted: it is cleaned, so
// it can only ever name a file inside the directory. A path the user typed
// is theirs: a directory (existing, or ending in a separator) takes the
// cleaned name, anything else is the file to write.
func destination(dest, serverName string) (dir, name string) {
	clean := safeName(serverName)
	if dest == "" {
		return ".", clean
	}
	dest = expandHome(dest)
	if st, err := os.Stat(dest); (err == nil && st.IsDir()) || os.IsPathSeparator(dest[len(dest)-1]) {
		return dest, clean
	}
	dir, name = filepath.Split(dest)
	if dir == "" {
		dir = "."
	}
	return dir, name
}

// safeName turns a name from the network into one that is safe to create
// in a directory: no path separators (nor characters Windows refuses), no
// control or invisible characters (bidi overrides could disguise the
// extension), no leading dots (hidden files, "..") and bounded in length.
func safeName(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		i += n
		switch {
		case r == utf8.RuneError && n == 1:
			b.WriteByte('_')
		case r == '/' || r == '\\' || strings.ContainsRune(`:*?"<>|`, r):
			b.WriteByte('_')
		case unicode.In(r, unicode.Cc, unicode.Cf, unicode.Zl, unicode.Zp):
			// dropped
		default:
			b.WriteRune(r)
		}
	}
	name := strings.TrimLeft(b.String(), ". ")
	if len(name) > maxSavedName {
		ext := filepath.Ext(name)
		if len(ext) > 16 {
			ext = ""
		}
		stem := name[:maxSavedName-len(ext)]
		for !utf8.ValidString(stem) { // cut at a character's start
			stem = stem[:len(stem)-1]
		}
		name = stem + ext
	}
	// Windows drops trailing dots and spaces, and some stems name devices.
	name = strings.TrimRight(name, ". ")
	if stem, _, _ := strings.Cut(name, "."); windowsDevice(stem) {
		name = "_" + name
	}
	if name == "" {
		return "download"
	}
	return name
}

func windowsDevice(stem string) bool {
	switch s := strings.ToUpper(strings.TrimSpace(stem)); s {
	case "CON", "PRN", "AUX", "NUL":
		return true
	default:
		return len(s) == 4 && (strings.HasPrefix(s, "COM") || strings.HasPrefix(s, "LPT")) && s[3] >= '1' && s[3] <= '9'
	}
}

// createUnique creates name in dir, or "name (1).ext", "name (2).ext", …
// when that exists: nothing is overwritten, and a name taken in between
// (O_EXCL) is skipped too.
func createUnique(dir, name string) (*os.File, string, error) {
	ext := filepath.Ext(name)
	stem := strings.TrimSuffix(name, ext)
	if stem == "" {
		stem, ext = name, ""
	}
	for i := 0; i < 1000; i++ {
		n := name
		if i > 0 {
			n = fmt.Sprintf("%s (%d)%s", stem, i, ext)
		}
		p := filepath.Join(dir, n)
		f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if err == nil {
			return f, p, nil
		}
		if !errors.Is(err, fs.ErrExist) {
			return nil, "", err
		}
	}
	return nil, "", fmt.Errorf("too many files named like %s in %s", name, dir)
}

// expandHome reads a leading "~/" as the home directory (no shell does it
// for a line typed here).
func expandHome(p string) string {
	if p != "~" && !strings.HasPrefix(p, "~/") {
		return p
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return p
	}
	return filepath.Join(home, p[1:])
}

// uploadGrant is the file API's answer to an upload.
type uploadGrant struct {
	Key     string `json:"key"`
	URL     string `json:"url"`
	Method  string `json:"method"`
	Expires int64  `json:"expires"`
}

// Upload asks for an upload of data to conversation conv, puts the bytes
// to the link it is given, and returns the file as the gateway stored it
// (the name is the caller's to set).
func (a *API) Upload(ctx context.Context, conv, name, typ string, data []byte) (frame.File, error) {
	var g uploadGrant
	req := map[string]any{"action": "upload", "conversationId": conv, "name": name, "size": len(data), "type": typ}
	if err := a.Call(ctx, "file", req, &g); err != nil {
		return frame.File{}, err
	}
	if g.Method != "" && g.Method != http.MethodPut {
		return frame.File{}, fmt.Errorf("the server asks for an upload by %q, which this client does not do", g.Method)
	}
	u, err := a.fileURL(g.URL)
	if err != nil {
		return frame.File{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, transferTimeout)
	defer cancel()
	put, err := http.NewRequestWithContext(ctx, http.MethodPut, u, bytes.NewReader(data))
	if err != nil {
		return frame.File{}, err
	}
	put.Header.Set("Content-Type", typ)
	res, err := a.transfer().Do(put)
	if err != nil {
		return frame.File{}, err
	}
	defer res.Body.Close()
	body, err := io.ReadAll(io.LimitReader(res.Body, 64<<10))
	if err != nil {
		return frame.File{}, err
	}
	if res.StatusCode/100 != 2 {
		return frame.File{}, apiError(res.StatusCode, body)
	}
	var f frame.File
	if err := json.Unmarshal(body, &f); err != nil {
		return frame.File{}, fmt.Errorf("reading the upload's answer: %w", err)
	}
	if f.Key == "" {
		f.Key = g.Key
	}
	return f, nil
}

// DownloadLinks asks for links to the files of keys, and when they expire
// (unix ms).
func (a *API) DownloadLinks(ctx context.Context, keys []string) (map[string]string, int64, error) {
	var res struct {
		URLs    map[string]string `json:"urls"`
		Expires int64             `json:"expires"`
	}
	err := a.Call(ctx, "file", map[string]any{"action": "download", "keys": keys}, &res)
	return res.URLs, res.Expires, err
}

// Open starts the download of a link the file API gave; the caller reads
// and closes the body.
func (a *API) Open(ctx context.Context, link string) (io.ReadCloser, error) {
	u, err := a.fileURL(link)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, transferTimeout)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		cancel()
		return nil, err
	}
	res, err := a.transfer().Do(req)
	if err != nil {
		cancel()
		return nil, err
	}
	if res.StatusCode != http.StatusOK {
		defer cancel()
		defer res.Body.Close()
		data, _ := io.ReadAll(io.LimitReader(res.Body, 64<<10))
		return nil, apiError(res.StatusCode, data)
	}
	return &cancelBody{ReadCloser: res.Body, cancel: cancel}, nil
}

// cancelBody ends a download's context when its body is closed.
type cancelBody struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (b *cancelBody) Close() error {
	err := b.ReadCloser.Close()
	b.cancel()
	return err
}

// fileURL is the absolute address of a link the file API gave. Links are
// relative to the gateway; anything else is refused, so that the server's
// answer cannot send the client's bytes elsewhere.
func (a *API) fileURL(link string) (string, error) {
	if !strings.HasPrefix(link, "/files/") {
		return "", fmt.Errorf("the server gave an unexpected file link %q", oneLine(link, 60))
	}
	return a.url(link), nil
}

// transfer is the client for uploads and downloads: the API's bound of 30 s
// is too short for 20 MiB on a slow line, so the context bounds them.
func (a *API) transfer() *http.Client {
	if a.HTTP != nil {
		return a.HTTP
	}
	return &http.Client{}
}
