package fileroute

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"

	"golang.org/x/image/draw"

	"easychat/pkg/blob"
	"easychat/pkg/filelink"
)

// Thumbnails: a chat shows an image in a box of at most 240×240 CSS pixels,
// so readers fetch a JPEG of at most ThumbSide pixels a side (sharp on 2×
// screens) instead of the whole image, which may be 20 MiB.
const (
	ThumbSide = 480
	// thumbMaxPixels bounds what is decoded to make one: an image's pixels
	// take four bytes each in memory. Larger images get none (readers get
	// the image itself).
	thumbMaxPixels = 24 << 20
	// thumbMinBytes: a smaller image is its own thumbnail.
	thumbMinBytes = 96 << 10
)

// thumbSlots bounds the thumbnails made at once in this process, and so
// the memory they take (at most 96 MiB of pixels each).
var thumbSlots = make(chan struct{}, 2)

// needsThumb reports whether a stored image gets a thumbnail. GIFs keep
// their animation: they are shown as they are.
func needsThumb(in blob.Info) bool {
	switch in.Type {
	case "image/jpeg", "image/png", "image/webp":
	default:
		return false
	}
	big := in.Width > ThumbSide || in.Height > ThumbSide || in.Size > thumbMinBytes
	return big && in.Width*in.Height <= thumbMaxPixels
}

// thumbnail decodes the stored image in, scales it to fit ThumbSide and
// stores it as a JPEG at its thumbnail key.
func (h *Handler) thumbnail(ctx context.Context, in blob.Info) error {
	select {
	case thumbSlots <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-thumbSlots }()
	obj, _, err := h.Blobs.Open(ctx, in.Key)
	if err != nil {
		return err
	}
	src, _, err := image.Decode(obj)
	obj.Close()
	if err != nil {
		return fmt.Errorf("decoding: %w", err)
	}
	b := src.Bounds()
	w, ht := fit(b.Dx(), b.Dy(), ThumbSide)
	dst := image.NewRGBA(image.Rect(0, 0, w, ht))
	// JPEG has no transparency: transparent parts show on white, as the
	// chat's light background.
	draw.Draw(dst, dst.Bounds(), image.NewUniform(color.White), image.Point{}, draw.Src)
	draw.CatmullRom.Scale(dst, dst.Bounds(), src, b, draw.Over, nil)
	var out bytes.Buffer
	if err := jpeg.Encode(&out, dst, &jpeg.Options{Quality: 82}); err != nil {
		return fmt.Errorf("encoding: %w", err)
	}
	return h.Blobs.Put(ctx, filelink.ThumbKey(in.Key), &out, blob.Info{Size: int64(out.Len()), Type: "image/jpeg",
		Name: in.Name, Uploader: in.Uploader, Width: w, Height: ht})
}

// fit scales w×h to fit a side×side box, keeping its shape, never up.
func fit(w, h, side int) (int, int) {
	if w <= side && h <= side {
		return w, h
	}
	if w >= h {
		return side, max(1, h*side/w)
	}
	return max(1, w*side/h), side
}
