// Command catalog measures the server time of the marketplace's catalog
// page with 1 and with 10,000 solutions, in one run: the real web
// handler (internal/web) over an in-memory list, each request through
// httptest, for several queries (plain, a search, filters, page 100,
// most used). It prints the median and p99 of each and, with -docs,
// writes them into docs/benchmarks.md.
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"time"

	"github.com/aimhub/aim/bench/internal/docsection"
	"github.com/aimhub/aim/internal/solution"
	"github.com/aimhub/aim/internal/spec"
	"github.com/aimhub/aim/internal/store"
	"github.com/aimhub/aim/internal/web"
)

const (
	beginMarker = "<!-- bench/catalog results: begin (go run ./bench/catalog -docs docs/benchmarks.md rewrites this part) -->"
	endMarker   = "<!-- bench/catalog results: end -->"
)

// queries are what the catalog is asked, as a visitor's links ask it.
var queries = []struct{ name, target string }{
	{"plain (newest first)", "/"},
	{"search, two words", "/?q=inspection+quality"},
	{"filter: phase and tag", "/?phase=product-development&tag=vision"},
	{"page 100", "/?page=100"},
	{"most used", "/?sort=used"},
	{"search, filter, most used", "/?q=model&provider=Provider+7&sort=used"},
}

func main() {
	n := flag.Int("n", 400, "measured requests per query and size")
	docs := flag.String("docs", "", "also write the results between the bench/catalog markers of this file, e.g. docs/benchmarks.md")
	profile := flag.String("cpuprofile", "", "write a CPU profile of the run to this file")
	flag.Parse()
	if *profile != "" {
		f, err := os.Create(*profile)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench/catalog:", err)
			os.Exit(1)
		}
		defer pprof.StopCPUProfile()
	}
	if err := run(*n, *docs); err != nil {
		pprof.StopCPUProfile()
		fmt.Fprintln(os.Stderr, "bench/catalog:", err)
		os.Exit(1)
	}
}

// result is one query on one catalog.
type result struct {
	median, p99 time.Duration
	bytes       int
	// alloc is what one request allocates, on average.
	alloc uint64
	total string // the page's heading: how many matched
}

func run(n int, docs string) error {
	sizes := []int{1, 10000}
	results := make([][]result, len(queries)) // by query, then size
	for qi := range queries {
		results[qi] = make([]result, len(sizes))
	}
	for si, size := range sizes {
		c := catalog(size)
		for qi, q := range queries {
			r, err := measure(c, q.target, n)
			if err != nil {
				return fmt.Errorf("%d solutions, %s: %w", size, q.name, err)
			}
			results[qi][si] = r
			fmt.Fprintf(os.Stderr, "%6d solutions  %-28s median %8s  p99 %8s  %6d bytes  %4d KiB allocated  %s\n", size, q.name, r.median, r.p99, r.bytes, r.alloc>>10, r.total)
		}
	}
	md := report(n, sizes, results)
	fmt.Print(md)
	if docs != "" {
		return replaceSection(docs, md)
	}
	return nil
}

// measure serves target n times after a warm-up and returns the median
// and p99 of the handler's time.
func measure(h http.Handler, target string, n int) (result, error) {
	var r result
	times := make([]time.Duration, 0, n)
	var before, after runtime.MemStats
	for i := range n + n/10 {
		if i == n/10 {
			runtime.ReadMemStats(&before)
		}
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodGet, target, nil)
		start := time.Now()
		h.ServeHTTP(rec, req)
		d := time.Since(start)
		if rec.Code != http.StatusOK {
			return r, fmt.Errorf("status %d", rec.Code)
		}
		if i < n/10 {
			continue // warm-up
		}
		times = append(times, d)
		r.bytes = rec.Body.Len()
		r.total = heading(rec.Body.Bytes())
	}
	runtime.ReadMemStats(&after)
	r.alloc = (after.TotalAlloc - before.TotalAlloc) / uint64(n)
	slices.Sort(times)
	r.median, r.p99 = times[len(times)/2], times[len(times)*99/100]
	return r, nil
}

// heading is the catalog page's "N solutions …" line.
func heading(page []byte) string {
	_, rest, ok := bytes.Cut(page, []byte(`id="aim-results"`))
	if !ok {
		return ""
	}
	_, rest, _ = bytes.Cut(rest, []byte(">"))
	h, _, _ := bytes.Cut(rest, []byte("<"))
	return string(h)
}

// catalog is the real catalog over n made-up solutions, seen by an
// anonymous visitor, with a store that knows their use.
func catalog(n int) *web.Catalog {
	sols, used := make(list, n), map[string]int64{}
	tags := []string{"vision", "nlp", "cad", "forecasting", "quality", "robotics", "llm", "maintenance", "simulation", "planning"}
	words := []string{"model", "inspection", "assistant", "optimiser", "search", "quality", "design", "review", "planner", "detector"}
	for i := range sols {
		name := fmt.Sprintf("solution-%05d", i)
		m := &spec.Manifest{Name: name, Title: fmt.Sprintf("%s %s %d", strings.ToUpper(words[i%10][:1])+words[i%10][1:], words[(i/10)%10], i),
			Description: fmt.Sprintf("A **%s** for %s work, with an API and a page to try it.\n\nUpload your data and get an answer in seconds; see the [docs](https://example.com/%d).",
				words[(i/7)%10], tags[i%10], i),
			Provider: spec.Provider{Name: fmt.Sprintf("Provider %d", i%80), Contact: "team@example.com"},
			Tags:     []string{tags[i%10], tags[(i/3)%10], tags[(i/11)%10]},
			Phases:   []spec.Phase{spec.Phases[i%4]},
		}
		if i%5 == 0 {
			m.Phases = append(m.Phases, spec.Phases[(i+1)%4])
		}
		if i%10 == 9 {
			m.Visibility, m.Access = spec.Private, spec.Access{Emails: []string{"someone@example.com"}}
		}
		if i%3 == 0 {
			m.Thumbnail = "card.png"
		}
		st := solution.Sleeping
		if i%4 == 0 {
			st = solution.Ready
		}
		at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(i) * time.Minute)
		sols[i] = &solution.Info{Name: name, Title: m.Title, Description: m.Description, Provider: m.Provider, Tags: m.Tags,
			URL: "https://" + name + ".aim.example/", State: st, Generation: int64(i + 1), Manifest: m, CreatedAt: at, UpdatedAt: at,
			Owner: fmt.Sprintf("p%d", i%80), Visibility: solution.VisibilityOf(m)}
		used[name] = int64((i * 7919) % 1000)
	}
	c := web.NewCatalog(sols, nil, web.NewPages(nil))
	c.Store = memStore{used: used}
	return c
}

// list is the in-memory Lister: the controller's List returns every
// solution the same way, already made.
type list []*solution.Info

func (l list) List(context.Context) []*solution.Info { return l }

// memStore is the store's part the catalog reads, in memory.
type memStore struct{ used map[string]int64 }

func (m memStore) UsageTotals(context.Context, string) (map[string]int64, error) { return m.used, nil }
func (memStore) ListProviders(context.Context) ([]store.Provider, error)         { return nil, nil }
func (memStore) GetThumbnail(context.Context, string) (*store.Thumbnail, error) {
	return nil, store.ErrNotFound
}
func (memStore) Key(context.Context, string) ([]byte, error) { return make([]byte, 32), nil }

func report(n int, sizes []int, results [][]result) string {
	var b strings.Builder
	fmt.Fprintf(&b, "\n**Result** (%s, %s/%s, %d CPUs, %s; %d requests per query and size after %d of warm-up):\n\n",
		time.Now().UTC().Format("2006-01-02"), runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.Version(), n, n/10)
	b.WriteString("| query | 1 solution: median | p99 | 10,000 solutions: median | p99 | 10,000 / 1 (median) | matched of 10,000 | page | allocated per request (10,000) |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|\n")
	for qi, q := range queries {
		one, many := results[qi][0], results[qi][len(sizes)-1]
		fmt.Fprintf(&b, "| %s `%s` | %s | %s | %s | %s | %.0f× | %s | %d KiB | %d KiB |\n", q.name, q.target, ms(one.median), ms(one.p99),
			ms(many.median), ms(many.p99), float64(many.median)/float64(one.median), many.total, many.bytes>>10, many.alloc>>10)
	}
	b.WriteString("\n")
	return b.String()
}

func ms(d time.Duration) string { return fmt.Sprintf("%.3f ms", float64(d)/float64(time.Millisecond)) }

// replaceSection puts md between the markers in path.
func replaceSection(path, md string) error {
	return docsection.Replace(path, beginMarker, endMarker, md, "bench/catalog")
}
