package web

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/aimhub/aim/internal/auth"
	"github.com/aimhub/aim/internal/solution"
	"github.com/aimhub/aim/internal/spec"
)

// maxFacet bounds the values a filter lists: the commonest, and the one
// chosen. The others are a search away.
const maxFacet = 12

// card is a solution as the catalog shows it.
type card struct {
	*solution.Info
	Private bool
	// Page is the solution's page; Thumb its thumbnail's URL, or empty.
	Page, Thumb string
	Excerpt     string
	// Reason is why it is in its state, for those who manage it only
	// (a failed start quotes the component's output, which is its
	// provider's business, as the API holds).
	Reason string
}

// catalogPage is what catalog.html shows.
type catalogPage struct {
	Viewer  Viewer
	Query   Query
	Total   int
	Heading string
	Cards   []card
	// Hidden are the filters and order the search form keeps.
	Hidden  []field
	Filters []filter
	Sorts   []option
	Pager   pager
	// Filtered is set when a search or a filter narrows the catalog;
	// Clear then shows it all.
	Filtered bool
	Clear    string
	CAURL    string
}

type field struct{ Name, Value string }

// filter is one facet of the catalog: its values with their counts, each
// a link that adds it to the query, or for the chosen one removes it.
type filter struct {
	Title, ID string
	Options   []option
}

type option struct {
	Label  string
	Count  int
	URL    string
	Active bool
}

type pager struct {
	Page, Pages int
	Prev, Next  string
	Links       []pageLink
}

// pageLink is a numbered page; Gap marks pages left out before it.
type pageLink struct {
	N       int
	URL     string
	Current bool
	Gap     bool
}

func (c *Catalog) catalog(w http.ResponseWriter, r *http.Request) {
	v := c.viewer(r)
	q := ParseQuery(r.URL.Query())
	used, _ := c.recentData(r.Context())
	var usedFn func(string) int64
	if used != nil {
		usedFn = func(name string) int64 { return used[name] }
	}
	all := c.list.List(r.Context())
	text, indexed := c.search.lookup(all)
	res := q.run(all, func(in *solution.Info) bool { return listable(v.Identity, in) }, usedFn, text)
	indexed()
	q.Page = min(q.Page, res.Pages)
	p := catalogPage{Viewer: v, Query: q, Total: res.Total, CAURL: c.CAURL, Pager: pages(q, res.Pages)}
	p.Filtered = q.Q != "" || q.Tag != "" || q.Provider != "" || q.Phase != "" || q.State != ""
	p.Clear = link(Query{Sort: q.Sort}, 0)
	p.Heading = heading(q, res.Total)
	for _, in := range res.Solutions {
		p.Cards = append(p.Cards, c.card(v.Identity, in))
	}
	for k, s := range map[string]string{"tag": q.Tag, "provider": q.Provider, "phase": q.Phase, "state": string(q.State)} {
		if s != "" {
			p.Hidden = append(p.Hidden, field{k, s})
		}
	}
	if q.Sort == "used" {
		p.Hidden = append(p.Hidden, field{"sort", "used"})
	}
	slices.SortFunc(p.Hidden, func(a, b field) int { return strings.Compare(a.Name, b.Name) })
	p.Filters = []filter{
		facet("Phase", "phase", q, res.Phases, q.Phase, func(q *Query, v string) { q.Phase = v }, func(v string) string { return spec.Phase(v).Title() }),
		facet("Tag", "tag", q, res.Tags, q.Tag, func(q *Query, v string) { q.Tag = v }, nil),
		facet("Provider", "provider", q, res.Providers, q.Provider, func(q *Query, v string) { q.Provider = v }, nil),
		facet("State", "state", q, res.States, string(q.State), func(q *Query, v string) { q.State = solution.State(v) }, stateLabel),
	}
	newest, mostUsed := q, q
	newest.Sort, mostUsed.Sort = "newest", "used"
	p.Sorts = []option{{Label: "Newest", URL: link(newest, 0), Active: q.Sort != "used"}, {Label: "Most used", URL: link(mostUsed, 0), Active: q.Sort == "used"}}
	c.pages.render(w, http.StatusOK, "catalog.html", p)
}

func (c *Catalog) card(id auth.Identity, in *solution.Info) card {
	cd := card{Info: in, Page: solutionPath(in.Name), Excerpt: c.excerpt(in.Name, in.Description)}
	if in.Manifest != nil {
		cd.Private = in.Manifest.IsPrivate()
		cd.Thumb = c.thumbURL(in)
	}
	if id.Manages(in.Owner) {
		cd.Reason = in.Reason
	}
	return cd
}

// solutionPath is the page of solution name.
func solutionPath(name string) string { return "/s/" + url.PathEscape(name) }

// link is the catalog's URL for q at page (0 or 1: the first).
func link(q Query, page int) string {
	if v := q.Values(page).Encode(); v != "" {
		return "/?" + v
	}
	return "/"
}

func heading(q Query, total int) string {
	n := fmt.Sprintf("%d solutions", total)
	if total == 1 {
		n = "1 solution"
	}
	if q.Q != "" {
		return fmt.Sprintf("%s matching “%s”", n, q.Q)
	}
	return n
}

// facet makes one filter: up to maxFacet values, with the chosen one
// always among them (with 0 when nothing has it, so that it can be
// removed), each a link that chooses it, or for the chosen one clears it;
// the page goes back to the first.
func facet(title, id string, q Query, values []Facet, chosen string, set func(*Query, string), label func(string) string) filter {
	f := filter{Title: title, ID: id}
	seen := false
	for i, fv := range values {
		if i >= maxFacet && fv.Value != chosen {
			continue
		}
		seen = seen || fv.Value == chosen
		f.Options = append(f.Options, facetOption(q, fv, chosen, set, label))
	}
	if chosen != "" && !seen {
		f.Options = append([]option{facetOption(q, Facet{Value: chosen, Label: chosen}, chosen, set, label)}, f.Options...)
	}
	return f
}

func facetOption(q Query, fv Facet, chosen string, set func(*Query, string), label func(string) string) option {
	o := option{Label: fv.Label, Count: fv.Count, Active: fv.Value == chosen}
	if label != nil {
		o.Label = label(fv.Value)
	}
	if o.Active {
		set(&q, "")
	} else {
		set(&q, fv.Value)
	}
	o.URL = link(q, 0)
	return o
}

func stateLabel(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// pages is the pager of q: previous and next, the first and last pages
// and two either side of the current one.
func pages(q Query, n int) pager {
	p := pager{Page: q.Page, Pages: n}
	if n <= 1 {
		return p
	}
	if q.Page > 1 {
		p.Prev = link(q, q.Page-1)
	}
	if q.Page < n {
		p.Next = link(q, q.Page+1)
	}
	last := 0
	for i := 1; i <= n; i++ {
		if i != 1 && i != n && (i < q.Page-2 || i > q.Page+2) {
			continue
		}
		p.Links = append(p.Links, pageLink{N: i, URL: link(q, i), Current: i == q.Page, Gap: last != 0 && i > last+1})
		last = i
	}
	return p
}
