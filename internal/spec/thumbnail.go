package spec

import (
	"fmt"
	"net/http"
)

// CheckThumbnail checks a thumbnail's bytes: at most MaxThumbnail, and a
// PNG, JPEG or WebP image by its content (not its name), which is the
// type aim then serves it as. It returns that type.
func CheckThumbnail(name string, data []byte) (contentType string, err error) {
	if len(data) > MaxThumbnail {
		return "", fmt.Errorf("thumbnail %s is %d bytes; at most %d (1 MiB)", name, len(data), MaxThumbnail)
	}
	if len(data) == 0 {
		return "", fmt.Errorf("thumbnail %s is empty", name)
	}
	switch ct := http.DetectContentType(data); ct {
	case "image/png", "image/jpeg", "image/webp":
		return ct, nil
	default:
		return "", fmt.Errorf("thumbnail %s is not a PNG, JPEG or WebP image (its content reads as %s)", name, ct)
	}
}
