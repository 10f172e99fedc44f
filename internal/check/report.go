package check

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"time"
)

// Status is a rule's outcome.
type Status string

const (
	Pass Status = "pass"
	Warn Status = "warn"
	Fail Status = "fail"
	// Skip means the rule could not be judged, e.g. because the component
	// never started; the evidence says why.
	Skip Status = "skip"
)

// Result is one rule's outcome for one component (or for the solution,
// when Component is empty).
type Result struct {
	// ID names the rule, e.g. "port-8080"; see Rules.
	ID        string `json:"id"`
	Component string `json:"component,omitempty"`
	// Rule states the rule in a line.
	Rule     string `json:"rule"`
	Status   Status `json:"status"`
	Evidence string `json:"evidence"`
	// Fix says what to change; set when Status is warn or fail.
	Fix string `json:"fix,omitempty"`
}

// Report is what a check found.
type Report struct {
	Solution string `json:"solution"`
	// Images maps component names to the image each ran.
	Images map[string]string `json:"images"`
	// Fast is true for the subset aim deploy runs against running
	// containers (see Fast); StartupTime, IdleMemory and ImageSize are then
	// zero.
	Fast    bool     `json:"fast,omitempty"`
	Results []Result `json:"results"`
	// StartupTime is the slowest component's time from start to its first
	// HTTP answer on 8080.
	StartupTime Duration `json:"startupTime"`
	// IdleMemory is the components' memory use summed, measured once they
	// answer and before any load.
	IdleMemory int64 `json:"idleMemory"`
	// ImageSize sums the sizes of the distinct images.
	ImageSize int64 `json:"imageSize"`
	// OpenAPI is the path, on the solution's public URL, of the OpenAPI
	// document the check found (e.g. "/openapi.json"); empty when none.
	// The catalog links it.
	OpenAPI string `json:"openapi,omitempty"`
}

// Add adds results and keeps the report in rule order, then component
// order, as reports list them.
func (r *Report) Add(results ...Result) {
	if len(results) == 0 {
		return
	}
	r.Results = append(r.Results, results...)
	order := map[string]int{}
	for i, rule := range Rules {
		order[rule.ID] = i
	}
	sort.SliceStable(r.Results, func(i, j int) bool { return order[r.Results[i].ID] < order[r.Results[j].ID] })
}

// Failed reports whether a rule failed.
func (r *Report) Failed() bool { return r.Count(Fail) > 0 }

// Count returns how many results have status s.
func (r *Report) Count(s Status) int {
	n := 0
	for _, res := range r.Results {
		if res.Status == s {
			n++
		}
	}
	return n
}

// Result returns the first result of rule id for component comp (""
// matches any component).
func (r *Report) Result(id, comp string) (Result, bool) {
	for _, res := range r.Results {
		if res.ID == id && (comp == "" || res.Component == comp) {
			return res, true
		}
	}
	return Result{}, false
}

// Duration is a time.Duration that reads and writes JSON as "1.25s".
type Duration time.Duration

func (d Duration) String() string { return FormatDuration(time.Duration(d)) }

func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("duration must be a string like \"1.5s\": %w", err)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// fmtDuration rounds to what a person reads: 0.31s, 4.2s, 1m12s.
func FormatDuration(d time.Duration) string {
	switch {
	case d%time.Second == 0 && d < 10*time.Minute:
		return strconv.FormatInt(int64(d/time.Second), 10) + "s"
	case d < 10*time.Second:
		return strconv.FormatFloat(d.Seconds(), 'f', 2, 64) + "s"
	case d < time.Minute:
		return strconv.FormatFloat(d.Seconds(), 'f', 1, 64) + "s"
	default:
		return d.Round(time.Second).String()
	}
}

// fmtBytes writes n in binary units: 512B, 9.4MiB, 1.2GiB.
func FormatBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return strconv.FormatInt(n, 10) + "B"
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return strconv.FormatFloat(float64(n)/float64(div), 'f', 1, 64) + string("KMGTPE"[exp]) + "iB"
}
