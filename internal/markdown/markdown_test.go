package markdown

import (
	"strings"
	"testing"

	"golang.org/x/net/html"
)

func TestHTML(t *testing.T) {
	r := New()
	for _, tc := range []struct {
		name, src  string
		want, bans []string
	}{
		{"emphasis and lists", "Find **parts** fast.\n\n- one\n- two", []string{"<strong>parts</strong>", "<li>one</li>"}, nil},
		{"a table", "| a | b |\n|---|---|\n| 1 | 2 |", []string{"<table>", "<td>1</td>"}, nil},
		{"a link leaves safely", "[docs](https://example.com/docs)",
			[]string{`href="https://example.com/docs"`, `rel="nofollow noreferrer noopener"`, `target="_blank"`}, nil},
		{"raw script", "hi <script>alert(1)</script>", nil, []string{"<script", "alert(1)</script>"}},
		{"event handler", `<img src="x" onerror="alert(1)">`, nil, []string{"onerror"}},
		{"inline HTML with a handler", `<a href="#" onclick="steal()">x</a>`, nil, []string{"onclick"}},
		{"javascript link", "[x](javascript:alert(1))", nil, []string{"javascript:"}},
		{"data URL image", "![x](data:text/html;base64,PHNjcmlwdD4=)", nil, []string{"data:"}},
		{"an iframe", `<iframe src="https://evil.example"></iframe>`, nil, []string{"<iframe"}},
		{"autolink", "see https://example.com", []string{`<a href="https://example.com"`}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := string(r.HTML(tc.src))
			for _, w := range tc.want {
				if !strings.Contains(got, w) {
					t.Errorf("%q lacks %q", got, w)
				}
			}
			for _, b := range tc.bans {
				if strings.Contains(got, b) {
					t.Errorf("%q contains %q", got, b)
				}
			}
		})
	}
}

// FuzzHTML holds every rendering to the policy: no script, style or
// frame element, no event handler attribute, no URL but http(s), mailto
// and relative ones, whatever the source.
func FuzzHTML(f *testing.F) {
	f.Add("<script>x</script>")
	f.Add(`[a](javascript:x) <img onerror=x>`)
	f.Add("0 onerror=")
	r := New()
	f.Fuzz(func(t *testing.T, src string) {
		out := string(r.HTML(src))
		z := html.NewTokenizer(strings.NewReader(out))
		for {
			tt := z.Next()
			if tt == html.ErrorToken {
				return
			}
			if tt != html.StartTagToken && tt != html.SelfClosingTagToken {
				continue
			}
			tok := z.Token()
			switch tok.Data {
			case "script", "style", "iframe", "object", "embed", "form":
				t.Fatalf("%q rendered a <%s>: %q", src, tok.Data, out)
			}
			for _, a := range tok.Attr {
				v := strings.ToLower(strings.TrimSpace(a.Val))
				if strings.HasPrefix(a.Key, "on") || a.Key == "style" ||
					(a.Key == "href" || a.Key == "src") && !allowedScheme(v) {
					t.Fatalf("%q rendered %s=%q: %q", src, a.Key, a.Val, out)
				}
			}
		}
	})
}

// allowedScheme reports whether a URL has no scheme (relative, or a
// fragment) or one the policy allows, reading the scheme as a browser
// does: up to the first ':' that comes before any '/', '?' or '#'.
func allowedScheme(v string) bool {
	i := strings.IndexAny(v, ":/?#")
	if i < 0 || v[i] != ':' {
		return true
	}
	switch v[:i] {
	case "http", "https", "mailto":
		return true
	}
	return false
}
