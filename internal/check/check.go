// Package check is aim's packaging standard as rules (docs/packaging.md):
// the rules, the report that judges each with evidence, its text and
// JSON forms, and the HTTP probes that need nothing but an address.
//
// Fast is the subset `aim deploy` runs against a solution's replicas once
// they answer, on either runtime. The full `aim check`, which runs the
// images in isolation on the Docker engine, is internal/check/dockercheck;
// keeping it apart keeps the Docker client out of the controller and the
// API, which link this package.
package check

import (
	"context"
	"slices"
	"sort"

	"github.com/aimhub/aim/internal/spec"
)

// Target is a running replica of a component as aim deploy has it.
type Target struct {
	Component spec.Component
	// Addr is host:port, where the gateway reaches the replica.
	Addr string
}

// Fast runs the rules marked Fast (root-html, siblings, openapi, health)
// against a deployed solution's running replicas, one per component, once
// they answer. It needs no engine and starts nothing; it returns when the
// probes are done or ctx ends. A report whose Failed is true should stop
// the deploy.
func Fast(ctx context.Context, m *spec.Manifest, targets []Target) *Report {
	hc := NewHTTPClient()
	rep := &Report{Solution: m.Name, Images: map[string]string{}, Fast: true}
	byName := map[string]Target{}
	for _, t := range targets {
		byName[t.Component.Name] = t
	}
	var ats []APITarget
	var rest []Result
	for _, c := range m.Components {
		rep.Images[c.Name] = c.Image
		t, ok := byName[c.Name]
		if !ok {
			continue
		}
		if !c.IsPublic() {
			if len(m.Components) > 1 {
				rest = append(rest, ProbeSibling(ctx, hc, t.Addr, c.Name))
			}
			continue
		}
		at := APITarget{Comp: c, Addr: t.Addr, Paths: c.Paths}
		if slices.Contains(c.Paths, "/") {
			var res Result
			res, at.Root = ProbeRoot(ctx, hc, t.Addr, c.Name)
			rest = append(rest, res)
		}
		rest = append(rest, ProbeHealth(ctx, hc, at))
		ats = append(ats, at)
	}
	var openapi Result
	if len(ats) > 0 {
		openapi, rep.OpenAPI = ProbeOpenAPI(ctx, hc, ats)
		rest = append(rest, openapi)
	}
	order := map[string]int{}
	for i, r := range Rules {
		order[r.ID] = i
	}
	sort.SliceStable(rest, func(i, j int) bool { return order[rest[i].ID] < order[rest[j].ID] })
	rep.Results = rest
	return rep
}
