package web

import (
	"cmp"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/aimhub/aim/internal/solution"
	"github.com/aimhub/aim/internal/spec"
)

// Query is what a visitor asks the catalog: a search and filters, an
// order and a page, as the URL's query carries them, so that every view
// of the catalog is a link that works without JavaScript.
type Query struct {
	// Q searches titles, descriptions, tags and providers: every word
	// must appear in one of them, in any case.
	Q string
	// Tag, Provider, State and Phase filter; empty means any.
	Tag, Provider, Phase string
	State                solution.State
	// Sort is "newest" (the default) or "used" (most page views and API
	// calls in the last 30 days), then by name.
	Sort string
	// Page counts from 1; PerPage solutions a page.
	Page int
}

// PerPage is how many solutions a catalog page shows.
const PerPage = 24

// ParseQuery reads a Query from a URL's query, ignoring what it does not
// know and clamping what is out of range.
func ParseQuery(v url.Values) Query {
	q := Query{
		Q: strings.TrimSpace(v.Get("q")), Tag: v.Get("tag"), Provider: v.Get("provider"),
		Phase: v.Get("phase"), State: solution.State(v.Get("state")), Sort: v.Get("sort"),
	}
	if len(q.Q) > 200 {
		q.Q = q.Q[:200]
	}
	if q.Sort != "used" {
		q.Sort = "newest"
	}
	q.Page, _ = strconv.Atoi(v.Get("page"))
	q.Page = max(q.Page, 1)
	return q
}

// Values is the query as URL values, with page set to page (0 leaves it
// out); the links of pages and filters are built from it.
func (q Query) Values(page int) url.Values {
	v := url.Values{}
	for k, s := range map[string]string{"q": q.Q, "tag": q.Tag, "provider": q.Provider, "phase": q.Phase, "state": string(q.State)} {
		if s != "" {
			v.Set(k, s)
		}
	}
	if q.Sort == "used" {
		v.Set("sort", "used")
	}
	if page > 1 {
		v.Set("page", strconv.Itoa(page))
	}
	return v
}

// Result is one page of the catalog.
type Result struct {
	Solutions []*solution.Info
	// Total matched; Pages of PerPage.
	Total, Pages int
	// Facets count, over what matched the search and the other filters,
	// the solutions of each tag, provider, phase and state: what a filter
	// link would show.
	Tags, Providers, Phases, States []Facet
}

// Facet is one value of a filter and how many solutions it has.
type Facet struct {
	Value, Label string
	Count        int
}

// Run answers q over the solutions the visitor may see (visible decides),
// with used giving each solution's recent use for the "used" order.
func (q Query) Run(all []*solution.Info, visible func(*solution.Info) bool, used func(name string) int64) Result {
	return q.run(all, visible, used, searchText)
}

// run is Run with text giving each solution's searchable text lowered:
// searchText, or what the catalog kept of it from one request to the
// next.
func (q Query) run(all []*solution.Info, visible func(*solution.Info) bool, used func(name string) int64, text func(*solution.Info) string) Result {
	words := strings.Fields(strings.ToLower(q.Q))
	var matched []*solution.Info
	tags, provs, phases, states := map[string]int{}, map[string]int{}, map[string]int{}, map[string]int{}
	for _, s := range all {
		if !visible(s) {
			continue
		}
		if len(words) > 0 && !containsAll(text(s), words) {
			continue
		}
		tagOK, provOK, phaseOK, stateOK := q.Tag == "" || slices.Contains(s.Tags, q.Tag), q.Provider == "" || providerOf(s) == q.Provider,
			q.Phase == "" || hasPhase(s, q.Phase), q.State == "" || s.State == q.State
		// A facet counts what its own filter would add to the others.
		if provOK && phaseOK && stateOK {
			for _, t := range s.Tags {
				tags[t]++
			}
		}
		if tagOK && phaseOK && stateOK && providerOf(s) != "" {
			provs[providerOf(s)]++
		}
		if tagOK && provOK && stateOK && s.Manifest != nil {
			for _, p := range s.Manifest.Phases {
				phases[string(p)]++
			}
		}
		if tagOK && provOK && phaseOK {
			states[string(s.State)]++
		}
		if tagOK && provOK && phaseOK && stateOK {
			matched = append(matched, s)
		}
	}
	// Names are unique, so either order is total and an unstable sort
	// is deterministic.
	if q.Sort == "used" && used != nil {
		sortByUse(matched, used)
	} else {
		slices.SortFunc(matched, func(a, b *solution.Info) int {
			if c := b.CreatedAt.Compare(a.CreatedAt); c != 0 {
				return c
			}
			return strings.Compare(a.Name, b.Name)
		})
	}
	r := Result{Total: len(matched), Pages: max(1, (len(matched)+PerPage-1)/PerPage)}
	page := min(q.Page, r.Pages)
	r.Solutions = matched[min((page-1)*PerPage, len(matched)):min(page*PerPage, len(matched))]
	r.Tags, r.Providers, r.States = facets(tags, nil), facets(provs, nil), facets(states, nil)
	r.Phases = facets(phases, func(v string) string { return spec.Phase(v).Title() })
	// Phases in the order of product creation, not by count.
	slices.SortFunc(r.Phases, func(a, b Facet) int {
		return slices.Index(spec.Phases, spec.Phase(a.Value)) - slices.Index(spec.Phases, spec.Phase(b.Value))
	})
	return r
}

// providerOf is the provider as visitors know it: the name its manifest
// gives. Never the owner's account name, which aim shows to those who
// manage the solution only (docs/roles.md), so that neither a filter nor
// a search can tell which solutions one account holds.
// sortByUse orders sols by used, most first, then by name, looking each
// one's use up once rather than at every comparison.
func sortByUse(sols []*solution.Info, used func(name string) int64) {
	type ranked struct {
		s    *solution.Info
		used int64
	}
	rs := make([]ranked, len(sols))
	for i, s := range sols {
		rs[i] = ranked{s, used(s.Name)}
	}
	slices.SortFunc(rs, func(a, b ranked) int {
		if c := cmp.Compare(b.used, a.used); c != 0 {
			return c
		}
		return strings.Compare(a.s.Name, b.s.Name)
	})
	for i, r := range rs {
		sols[i] = r.s
	}
}

func providerOf(s *solution.Info) string { return s.Provider.Name }

func hasPhase(s *solution.Info, p string) bool {
	return s.Manifest != nil && slices.Contains(s.Manifest.Phases, spec.Phase(p))
}

// searchText is what a search looks through in s, lowered, the fields
// apart so that no word spans two.
func searchText(s *solution.Info) string {
	return strings.ToLower(strings.Join([]string{s.Name, s.Title, s.Description, s.Provider.Name, strings.Join(s.Tags, " ")}, "\x00"))
}

// containsAll reports whether every (lowered) word is in text.
func containsAll(text string, words []string) bool {
	for _, w := range words {
		if !strings.Contains(text, w) {
			return false
		}
	}
	return true
}

func facets(m map[string]int, label func(string) string) []Facet {
	out := make([]Facet, 0, len(m))
	for v, n := range m {
		l := v
		if label != nil {
			l = label(v)
		}
		out = append(out, Facet{Value: v, Label: l, Count: n})
	}
	slices.SortFunc(out, func(a, b Facet) int {
		if a.Count != b.Count {
			return b.Count - a.Count
		}
		return strings.Compare(a.Value, b.Value)
	})
	return out
}
