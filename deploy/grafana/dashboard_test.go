// Package grafana holds the Grafana dashboard that ships with aim; its
// test keeps the dashboard's queries in step with the metrics aim serves.
package grafana

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/aimhub/aim/internal/gateway"
	"github.com/aimhub/aim/internal/metrics"
)

func TestDashboardQueriesNameServedMetrics(t *testing.T) {
	data, err := os.ReadFile("aim-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string
			Targets []struct{ Expr string }
		}
	}
	if err := json.Unmarshal(data, &dash); err != nil {
		t.Fatalf("aim-dashboard.json: %v", err)
	}

	// What aim serves: the platform's metrics and the gateway's, with one
	// solution that had a wake and two requests, one refused.
	m := metrics.New()
	g := gateway.New(gateway.Config{Metrics: m})
	m.Registry.MustRegister(g.Routes)
	g.Routes.Set(gateway.RouteSpec{Name: "s", State: gateway.StateReady, Limits: gateway.Limits{RPS: 1, Burst: 1}})
	for range 2 {
		g.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "http://s.localhost/", nil))
	}
	m.Wake("s", true, 0.1, 0.2)
	m.SetState("s", "ready", 1)
	fams, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	served := map[string]bool{}
	for _, f := range fams {
		served[f.GetName()] = true
	}

	metric := regexp.MustCompile(`\b(aim|process|go)_[a-z_]+`)
	n := 0
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			for _, name := range metric.FindAllString(tg.Expr, -1) {
				n++
				base := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(name, "_bucket"), "_sum"), "_count")
				if !served[base] {
					t.Errorf("panel %q queries %s, which aim does not serve", p.Title, name)
				}
			}
		}
	}
	if n == 0 {
		t.Fatal("the dashboard queries no metric")
	}
}
