package check

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
)

// WriteText writes the report for a person: one line per rule with its
// evidence, the fix under each warning and failure, the measurements and
// a verdict.
func WriteText(w io.Writer, r *Report) error {
	var b strings.Builder
	comps := make([]string, 0, len(r.Images))
	for c := range r.Images {
		comps = append(comps, c)
	}
	sort.Strings(comps)
	imgs := make([]string, len(comps))
	for i, c := range comps {
		imgs[i] = c + "=" + r.Images[c]
	}
	kind := "aim check"
	if r.Fast {
		kind = "aim check (fast subset)"
	}
	fmt.Fprintf(&b, "%s: %s (%s)\n\n", kind, r.Solution, strings.Join(imgs, ", "))
	writeResults(&b, "", r.Results, len(r.Images) > 1)
	if !r.Fast {
		fmt.Fprintf(&b, "\nstart-up %s · idle memory %s · image %s\n", r.StartupTime, FormatBytes(r.IdleMemory), FormatBytes(r.ImageSize))
	} else {
		b.WriteString("\n")
	}
	if r.OpenAPI != "" {
		fmt.Fprintf(&b, "OpenAPI document: %s\n", r.OpenAPI)
	}
	fails, warns := r.Count(Fail), r.Count(Warn)
	switch {
	case fails > 0:
		fmt.Fprintf(&b, "FAILED: %s of the standard, %s\n", plural(fails, "rule"), plural(warns, "warning"))
	default:
		fmt.Fprintf(&b, "OK: follows the standard, %s\n", plural(warns, "warning"))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteResults writes results as WriteText does, each line after indent,
// the component before the evidence when withComponent: for the findings
// that `aim deploy` and `aim status` show.
func WriteResults(w io.Writer, indent string, results []Result, withComponent bool) error {
	var b strings.Builder
	writeResults(&b, indent, results, withComponent)
	_, err := io.WriteString(w, b.String())
	return err
}

func writeResults(b *strings.Builder, indent string, results []Result, withComponent bool) {
	tw := tabwriter.NewWriter(b, 0, 4, 2, ' ', 0)
	for _, res := range results {
		ev := res.Evidence
		if res.Component != "" && withComponent {
			ev = res.Component + ": " + ev
		}
		fmt.Fprintf(tw, "%s%s\t%s\t%s\n", indent, strings.ToUpper(string(res.Status)), res.ID, ev)
		if res.Fix != "" {
			fmt.Fprintf(tw, "%s\t\tfix: %s\n", indent, res.Fix)
		}
	}
	tw.Flush()
}

func plural(n int, s string) string {
	if n == 1 {
		return "1 " + s
	}
	return fmt.Sprintf("%d %ss", n, s)
}

// WriteJSON writes the report as an indented JSON document.
func WriteJSON(w io.Writer, r *Report) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(r)
}
