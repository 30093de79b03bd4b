package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"easychat/gateway/fileroute"
	"easychat/gateway/metrics"
	"easychat/pkg/blob"
	"easychat/pkg/filelink"
	"easychat/pkg/frame"
)

// The client against the gateway's own /files/ handler and link signer (the
// file function's grants made here as it makes them): an image and a file
// go up, pass the chat function's check, and come back byte for byte.
func TestSendAndGetThroughGatewayFileRoute(t *testing.T) {
	g := newFakeGateway(t)
	g.storeChats = true
	links := filelink.New("test-internal-key")
	blobs := blob.NewMemory()
	g.mux.Handle("/files/", &fileroute.Handler{Blobs: blobs, Links: links, Metrics: metrics.New(), Log: slog.New(slog.DiscardHandler)})
	n := 0
	g.mux.HandleFunc("/api/file", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Action, ConversationID, Name, Type string
			Size                               int64
			Keys                               []string
		}
		_ = json.NewDecoder(r.Body).Decode(&req)
		exp := time.Now().Add(10 * time.Minute).UnixMilli()
		switch req.Action {
		case "upload":
			n++
			key := fmt.Sprintf("%s/alice/%032x", req.ConversationID, n)
			l := filelink.Link{Op: filelink.Put, Key: key, Expires: exp, Size: req.Size, Type: req.Type, Name: req.Name, User: "alice"}
			_ = json.NewEncoder(w).Encode(map[string]any{"key": key, "url": links.URL(l), "method": "PUT", "expires": exp})
		case "download":
			urls := map[string]string{}
			for _, k := range req.Keys {
				urls[k] = links.URL(filelink.Link{Op: filelink.Get, Key: k, Expires: exp})
			}
			_ = json.NewEncoder(w).Encode(map[string]any{"urls": urls, "expires": exp})
		}
	})
	app, out := startApp(t, g)
	ctx := context.Background()
	dir := t.TempDir()
	img := pngBytes(t, 33, 17)
	doc := []byte("%PDF-1.4\n1 0 obj<</Type/Catalog>>endobj\n%%EOF\n")
	name := "plan \u202egnp.pdf" // valid for the server, hostile to a terminal
	if err := os.WriteFile(filepath.Join(dir, "pic.png"), img, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), doc, 0o644); err != nil {
		t.Fatal(err)
	}
	app.Handle(ctx, Command{Kind: KindOpen, ID: "bob"})
	app.Handle(ctx, Command{Kind: KindSendFile, Path: filepath.Join(dir, "pic.png")})
	app.Handle(ctx, Command{Kind: KindSendFile, Path: filepath.Join(dir, name)})
	waitFor(t, "both seqs", func() bool { return strings.Count(out.String(), "✓ #") == 2 })

	g.mu.Lock()
	chats := append([]frame.Chat(nil), g.chats...)
	g.mu.Unlock()
	for i, c := range chats {
		f, err := frame.ParseFile(c.Msg.MType, c.Msg.Content, "alice_bob", "alice")
		if err != nil {
			t.Fatalf("chat %d: %v", i, err)
		}
		// What the chat function checks: the message equals the stored upload.
		in, err := blobs.Stat(ctx, f.Key)
		if err != nil || in.Size != f.Size || in.Type != f.Type || in.Name != f.Name ||
			(c.Msg.MType == frame.ImageMsg && (in.Width != f.Width || in.Height != f.Height)) {
			t.Fatalf("chat %d: %+v does not match its upload %+v (%v)", i, f, in, err)
		}
	}
	if chats[0].Msg.MType != frame.ImageMsg || chats[1].Msg.MType != frame.FileMsg {
		t.Fatalf("mTypes %d, %d", chats[0].Msg.MType, chats[1].Msg.MType)
	}

	got := t.TempDir()
	app.Handle(ctx, Command{Kind: KindGet, Seq: 1, Path: got})
	app.Handle(ctx, Command{Kind: KindGet, Seq: 2, Path: got})
	if b, _ := os.ReadFile(filepath.Join(got, "pic.png")); !bytes.Equal(b, img) {
		t.Fatalf("pic.png: %d bytes\n%s", len(b), out.String())
	}
	if b, _ := os.ReadFile(filepath.Join(got, "plan gnp.pdf")); !bytes.Equal(b, doc) {
		t.Fatalf("plan gnp.pdf: %d bytes\n%s", len(b), out.String())
	}
	text := out.String()
	if strings.ContainsRune(text, '\u202e') || !strings.Contains(text, `[file plan \u202egnp.pdf 46 B]`) {
		t.Fatalf("the name is not shown escaped:\n%s", text)
	}
}
