// Package markdown renders a provider's description for aim's pages:
// CommonMark with GitHub's tables, strikethrough and autolinks
// (goldmark), then sanitised (bluemonday), because the text is a
// tenant's and the page it lands on is the platform's. Raw HTML in the
// source is never passed through; what goldmark makes is filtered again
// to bluemonday's policy for user content, so a script, an event handler
// attribute or a javascript: link cannot reach a visitor's browser
// whatever the renderer does.
package markdown

import (
	"bytes"
	"html/template"

	"github.com/microcosm-cc/bluemonday"
	"github.com/yuin/goldmark"
	"github.com/yuin/goldmark/extension"
)

// Renderer renders Markdown to safe HTML. The zero value is not usable;
// make one with New and share it: it is safe for concurrent use.
type Renderer struct {
	md     goldmark.Markdown
	policy *bluemonday.Policy
}

// New makes a Renderer.
func New() *Renderer {
	p := bluemonday.UGCPolicy()
	// Links leave the platform for whatever the provider named: no
	// referrer, no opener, no endorsement.
	p.RequireNoFollowOnLinks(true)
	p.RequireNoReferrerOnLinks(true)
	p.AddTargetBlankToFullyQualifiedLinks(true)
	p.AllowURLSchemes("http", "https", "mailto")
	return &Renderer{
		md:     goldmark.New(goldmark.WithExtensions(extension.GFM)),
		policy: p,
	}
}

// HTML renders src. A source that goldmark cannot render (it renders
// anything) would come back escaped as plain text.
func (r *Renderer) HTML(src string) template.HTML {
	var buf bytes.Buffer
	if err := r.md.Convert([]byte(src), &buf); err != nil {
		return template.HTML("<p>" + template.HTMLEscapeString(src) + "</p>")
	}
	return template.HTML(r.policy.SanitizeBytes(buf.Bytes())) //nolint:gosec // sanitised just now
}
