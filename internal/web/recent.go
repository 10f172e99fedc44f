package web

import (
	"context"
	"strings"
	"sync"
	"time"

	"golang.org/x/net/html"
)

// recentFor is how long the catalog keeps what it read of the store for
// every page: the solutions' use and the providers' names.
const recentFor = time.Minute

// usageWindow is how far back "most used" counts.
const usageWindow = 30 * 24 * time.Hour

// recent is what the pages read from the store at most once a minute,
// however many visitors ask: one query sums the last 30 days' use of
// every solution, one lists the providers.
type recent struct {
	mu    sync.Mutex
	at    time.Time
	used  map[string]int64
	names map[string]string // provider account → display name
}

// recent returns the use and the providers' names, read anew when a
// minute old. A store that fails leaves what was read before (or
// nothing), logged: the catalog still shows, in the newest order.
func (c *Catalog) recentData(ctx context.Context) (used map[string]int64, names map[string]string) {
	if c.Store == nil {
		return nil, nil
	}
	r := &c.recent
	r.mu.Lock()
	defer r.mu.Unlock()
	now := c.now()
	if !r.at.IsZero() && now.Sub(r.at) < recentFor {
		return r.used, r.names
	}
	r.at = now
	if u, err := c.Store.UsageTotals(ctx, now.Add(-usageWindow).UTC().Format("2006-01-02")); err != nil {
		c.pages.log.Error("reading the solutions' use for the catalog", "err", err)
	} else {
		r.used = u
	}
	if ps, err := c.Store.ListProviders(ctx); err != nil {
		c.pages.log.Error("reading the providers for the catalog", "err", err)
	} else {
		r.names = make(map[string]string, len(ps))
		for _, p := range ps {
			if p.DisplayName != "" {
				r.names[p.Name] = p.DisplayName
			}
		}
	}
	return r.used, r.names
}

// excerptLen bounds a card's excerpt of the description, in bytes.
const excerptLen = 180

type excerpt struct{ src, text string }

// excerpt is the start of a solution's description as plain text, for
// its card: the Markdown rendered (and sanitised) once per description,
// its text kept, cut at a word.
func (c *Catalog) excerpt(name, src string) string {
	if src == "" {
		return ""
	}
	if e, ok := c.excerpts.Load(name); ok && e.(excerpt).src == src {
		return e.(excerpt).text
	}
	text := plainText(string(c.md.HTML(src)))
	if len(text) > excerptLen {
		cut := strings.LastIndexByte(text[:excerptLen], ' ')
		if cut < excerptLen/2 {
			cut = excerptLen
			for cut > 0 && text[cut]&0xC0 == 0x80 { // not inside a UTF-8 sequence
				cut--
			}
		}
		text = strings.TrimRight(text[:cut], " ,.;:") + "…"
	}
	c.excerpts.Store(name, excerpt{src, text})
	return text
}

// plainText is the text of an HTML fragment, its runs of space made one.
func plainText(fragment string) string {
	z := html.NewTokenizer(strings.NewReader(fragment))
	var b strings.Builder
	for {
		switch z.Next() {
		case html.ErrorToken:
			return strings.Join(strings.Fields(b.String()), " ")
		case html.TextToken:
			b.Write(z.Text())
		case html.StartTagToken, html.EndTagToken, html.SelfClosingTagToken:
			b.WriteByte(' ')
		}
	}
}
