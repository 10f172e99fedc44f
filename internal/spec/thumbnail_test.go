package spec

import (
	"bytes"
	"image"
	"image/png"
	"strings"
	"testing"
)

func TestCheckThumbnail(t *testing.T) {
	var pngData bytes.Buffer
	_ = png.Encode(&pngData, image.NewRGBA(image.Rect(0, 0, 4, 4)))
	for _, tc := range []struct {
		name string
		data []byte
		ct   string
		err  string
	}{
		{"png", pngData.Bytes(), "image/png", ""},
		{"html named .png", []byte("<html><script>alert(1)</script>"), "", "not a PNG, JPEG or WebP image (its content reads as text/html"},
		{"svg", []byte(`<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>`), "", "not a PNG"},
		{"too large", append(pngData.Bytes(), make([]byte, MaxThumbnail)...), "", "at most 1048576"},
		{"empty", nil, "", "is empty"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ct, err := CheckThumbnail("thumb.png", tc.data)
			if ct != tc.ct || (err == nil) != (tc.err == "") || err != nil && !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q %v, want %q %q", ct, err, tc.ct, tc.err)
			}
		})
	}
}
