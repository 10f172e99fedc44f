package web

import (
	"fmt"
	"net/url"
	"testing"
	"time"

	"github.com/aimhub/aim/internal/solution"
	"github.com/aimhub/aim/internal/spec"
)

func sol(name, title, owner string, tags []string, phases []spec.Phase, st solution.State, age int) *solution.Info {
	return &solution.Info{Name: name, Title: title, Provider: spec.Provider{Name: owner}, Owner: "account-" + owner, Tags: tags, State: st,
		CreatedAt: time.Unix(1e9, 0).Add(-time.Duration(age) * time.Hour),
		Manifest:  &spec.Manifest{Name: name, Phases: phases}}
}

func TestQuery(t *testing.T) {
	all := []*solution.Info{
		sol("parts", "Part Comparer", "acme", []string{"cad", "geometry"}, []spec.Phase{spec.ProductDevelopment}, solution.Ready, 1),
		sol("embed", "Text Embedding", "globex", []string{"nlp"}, []spec.Phase{spec.StrategicPlanning, spec.ServiceDevelopment}, solution.Sleeping, 2),
		sol("secret", "Secret CAD", "acme", []string{"cad"}, []spec.Phase{spec.ProductDevelopment}, solution.Ready, 0),
		sol("line", "Line Planner", "acme", []string{"factory"}, []spec.Phase{spec.ProductionDevelopment}, solution.Sleeping, 3),
	}
	all[0].Description = "Finds similar **CAD** parts."
	visible := func(s *solution.Info) bool { return s.Name != "secret" }
	used := map[string]int64{"line": 50, "embed": 10}
	names := func(r Result) string {
		var s []string
		for _, x := range r.Solutions {
			s = append(s, x.Name)
		}
		return fmt.Sprint(s)
	}
	for _, tc := range []struct {
		name, query string
		want        string
		total       int
	}{
		{"everything visible, newest first", "", "[parts embed line]", 3},
		{"search in the description, any case", "q=similar+cad", "[parts]", 1},
		{"search by tag and provider words", "q=globex+nlp", "[embed]", 1},
		{"a word nobody has", "q=quantum", "[]", 0},
		{"tag filter", "tag=cad", "[parts]", 1},
		{"phase filter", "phase=production-system-development", "[line]", 1},
		{"provider filter", "provider=acme", "[parts line]", 2},
		{"state filter", "state=sleeping", "[embed line]", 2},
		{"the owner's account is neither a filter nor a search", "provider=account-acme", "[]", 0},
		{"nor a search word", "q=account", "[]", 0},
		{"most used", "sort=used", "[line embed parts]", 3},
		{"filters together", "provider=acme&state=ready", "[parts]", 1},
		{"a page past the last shows the last", "page=9", "[parts embed line]", 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, _ := url.ParseQuery(tc.query)
			r := ParseQuery(v).Run(all, visible, func(n string) int64 { return used[n] })
			if got := names(r); got != tc.want || r.Total != tc.total {
				t.Errorf("%s (%d), want %s (%d)", got, r.Total, tc.want, tc.total)
			}
		})
	}
	// Facets count what each filter would show with the others applied,
	// and never the solutions the visitor may not see.
	v, _ := url.ParseQuery("provider=acme")
	r := ParseQuery(v).Run(all, visible, nil)
	if fmt.Sprint(r.Tags) != "[{cad cad 1} {factory factory 1} {geometry geometry 1}]" {
		t.Errorf("tags %v", r.Tags)
	}
	if fmt.Sprint(r.Providers) != "[{acme acme 2} {globex globex 1}]" {
		t.Errorf("providers %v", r.Providers)
	}
	if len(r.Phases) != 2 || r.Phases[0].Value != string(spec.ProductDevelopment) || r.Phases[0].Label != "Product development" {
		t.Errorf("phases %v", r.Phases)
	}
}

func TestQueryPaging(t *testing.T) {
	var all []*solution.Info
	for i := range 50 {
		all = append(all, sol(fmt.Sprintf("s%02d", i), "S", "", nil, nil, solution.Ready, i))
	}
	v, _ := url.ParseQuery("page=3")
	r := ParseQuery(v).Run(all, func(*solution.Info) bool { return true }, nil)
	if r.Pages != 3 || len(r.Solutions) != 2 || r.Solutions[0].Name != "s48" {
		t.Errorf("pages %d, %d on the last, first %s", r.Pages, len(r.Solutions), r.Solutions[0].Name)
	}
	if got := ParseQuery(v).Values(2).Encode(); got != "page=2" {
		t.Errorf("values %q", got)
	}
}

// BenchmarkQuery10000 is the catalog's search over 10,000 solutions: the
// server time of a page, without rendering (bench/catalog times it whole).
func BenchmarkQuery10000(b *testing.B) {
	var all []*solution.Info
	for i := range 10000 {
		all = append(all, sol(fmt.Sprintf("solution-%05d", i), fmt.Sprintf("Solution number %d", i), fmt.Sprintf("p%d", i%50),
			[]string{"tag" + fmt.Sprint(i%20), "ml"}, []spec.Phase{spec.Phases[i%4]}, solution.Ready, i))
	}
	v, _ := url.ParseQuery("q=number+ml&phase=product-development&sort=used")
	q := ParseQuery(v)
	for b.Loop() {
		q.Run(all, func(*solution.Info) bool { return true }, func(string) int64 { return 1 })
	}
}
