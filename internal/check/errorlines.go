package check

import (
	"regexp"
	"strings"
)

// crashLine is a line that starts a crash report as runtimes print it, at
// the start of a line: a Go panic or fatal error, a Python traceback or
// the exception that ends it, a JavaScript error, a Java exception or its
// cause.
var crashLine = regexp.MustCompile(`^(panic: |fatal error: |Traceback \(most recent call last\):|Exception in thread |Caused by: |([A-Za-z_][A-Za-z0-9_.]*)?(Error|Exception)(: |$))`)

// errorLine is a line that reports an error otherwise: a word error or
// fatal, a log's level=error.
var errorLine = regexp.MustCompile(`(?i)\b(error|fatal|critical)\b|Error:|level=(error|fatal|crit)`)

// ErrorLines picks from a process's output the lines, at most n, that say
// why it ended. That is not the output's tail when the process ended with
// a crash report: a Go panic's cause is its first line, followed by the
// goroutines' stacks, so the pick is the last report's first line and the
// lines after it, with the line before when that one logs an error (a
// program often logs the cause, then panics). A Python traceback's cause
// is its last line, so the pick is the traceback's first line and its
// last ones, down to the exception. Without a crash report, it is the
// last line that reports an error and the lines after it, or else the
// last n lines. Lines are trimmed and blank ones dropped.
func ErrorLines(out string, n int) []string {
	if n <= 0 {
		return nil
	}
	var raw, lines []string
	for _, l := range strings.Split(out, "\n") {
		if t := strings.TrimSpace(l); t != "" {
			raw = append(raw, strings.TrimRight(l, " \t\r"))
			lines = append(lines, t)
		}
	}
	var starts []int
	for i, l := range raw {
		if crashLine.MatchString(l) {
			starts = append(starts, i)
		}
	}
	if len(starts) > 0 {
		s := starts[len(starts)-1]
		if n >= 3 && len(starts) > 1 && strings.HasPrefix(raw[starts[len(starts)-2]], "Traceback") {
			// The exception that ends a traceback: the traceback's first
			// line, then its last frames down to the exception.
			t := starts[len(starts)-2]
			return append([]string{lines[t]}, lines[max(t+1, s-(n-2)):s+1]...)
		}
		pick := lines[s:min(len(lines), s+n)]
		if s > 0 && errorLine.MatchString(lines[s-1]) && !crashLine.MatchString(raw[s-1]) {
			pick = append([]string{lines[s-1]}, pick[:min(len(pick), n-1)]...)
		}
		return pick
	}
	// An error reported near the end, not one the process got over long
	// before it ended.
	for i := len(lines) - 1; i >= max(0, len(lines)-2*n); i-- {
		if errorLine.MatchString(lines[i]) {
			return lines[i:min(len(lines), i+n)]
		}
	}
	return lines[max(0, len(lines)-n):]
}
