// Package docsection writes a benchmark's results into a Markdown file
// between two marker comments, so that docs/benchmarks.md keeps the
// figures of the last recorded run beside the prose around them.
package docsection

import (
	"bytes"
	"fmt"
	"os"
)

// Replace puts md between begin and end in the file at path. what names
// the benchmark in the error for a file without the markers.
func Replace(path, begin, end, md, what string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	i := bytes.Index(b, []byte(begin))
	j := bytes.Index(b, []byte(end))
	if i < 0 || j < i {
		return fmt.Errorf("%s has no %s markers (%q … %q) to write the results between", path, what, begin, end)
	}
	var out bytes.Buffer
	out.Write(b[:i+len(begin)])
	out.WriteString("\n" + md)
	out.Write(b[j:])
	return os.WriteFile(path, out.Bytes(), 0o644)
}
