package gateway

import (
	"encoding/json"
	"html/template"
	"net/http"
	"strconv"
	"strings"
	"sync"
)

// bufferPool lends the proxy 32 KiB copy buffers, so that a proxied body
// costs no allocation once the pool is warm.
type bufferPool struct{}

var buffers = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

func (bufferPool) Get() []byte  { return *(buffers.Get().(*[]byte)) }
func (bufferPool) Put(b []byte) { buffers.Put(&b) }

var errorTmpl = template.Must(template.New("error").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
{{if .Retry}}<meta http-equiv="refresh" content="{{.Retry}}">{{end}}
<title>{{.Status}} {{.Title}}</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:40rem;margin:4rem auto;padding:0 1rem;color:#222}
h1{font-size:1.4rem}code{background:#f3f3f3;padding:.1rem .3rem}.s{color:#888}</style></head>
<body><p class="s">{{.Status}}</p><h1>{{.Title}}</h1>{{if .Detail}}<p>{{.Detail}}</p>{{end}}
<p class="s">aim</p></body></html>
`))

// errorPage answers with HTML for browsers and JSON for everyone else, so
// that API clients can read the reason. retry > 0 sets Retry-After.
func (g *Gateway) errorPage(w http.ResponseWriter, r *http.Request, status int, title, detail string, retry int) {
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	if retry > 0 {
		h.Set("Retry-After", strconv.Itoa(retry))
	}
	if wantsHTML(r) {
		h.Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(status)
		_ = errorTmpl.Execute(w, struct {
			Status        int
			Title, Detail string
			Retry         int
		}{status, title, detail, retry})
		return
	}
	h.Set("Content-Type", "application/json")
	w.WriteHeader(status)
	msg := title
	if detail != "" {
		msg += ": " + detail
	}
	_ = json.NewEncoder(w).Encode(map[string]any{"error": msg, "status": status})
}

// wantsHTML is true for a browser's navigation: a GET that accepts HTML.
func wantsHTML(r *http.Request) bool {
	return r.Method == http.MethodGet && strings.Contains(r.Header.Get("Accept"), "text/html")
}

var startingTmpl = template.Must(template.New("starting").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<meta http-equiv="refresh" content="1">
<title>Starting {{.Title}}…</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:40rem;margin:4rem auto;padding:0 1rem;color:#222;text-align:center}
.spin{width:2.5rem;height:2.5rem;margin:2rem auto;border:.3rem solid #ddd;border-top-color:#1a5fd0;border-radius:50%;animation:s 1s linear infinite}
@keyframes s{to{transform:rotate(360deg)}}.s{color:#888}</style></head>
<body><div class="spin"></div><h1 id="aim-starting">Starting {{.Title}}…</h1>
<p>It was asleep to save resources and is waking up. This page reloads by itself.</p>
{{if .Reason}}<p class="s">The last attempt failed: {{.Reason}}</p>{{end}}
<p class="s">aim</p></body></html>
`))

// startingPage tells a browser that the solution is waking; the page
// reloads itself every second until the solution answers instead.
func (g *Gateway) startingPage(w http.ResponseWriter, snap *snapshot) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Retry-After", "1")
	w.WriteHeader(http.StatusServiceUnavailable)
	_ = startingTmpl.Execute(w, struct{ Title, Reason string }{snap.title, snap.reason})
}
