package check

import (
	"fmt"
	"path"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// This file turns what the engine and a process said into results whose
// fix fits the case, for `aim check` and `aim deploy` alike: the same
// symptom gets the same words from both.

// ShellForm reports whether a container's command goes through a shell:
// the shell form of ENTRYPOINT or CMD, which Docker stores as
// ["/bin/sh", "-c", "…"].
func ShellForm(command []string) bool {
	if len(command) < 2 || command[1] != "-c" {
		return false
	}
	switch path.Base(command[0]) {
	case "sh", "bash", "dash", "ash":
		return true
	}
	return false
}

// Quote writes a command as the exec form of a Dockerfile would:
// ["uvicorn", "app:app"].
func Quote(command []string) string {
	q := make([]string, len(command))
	for i, a := range command {
		q[i] = strconv.Quote(a)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

// SigtermFix says how a component that outlived SIGTERM gets to exit on
// it, from the command it runs (the image's ENTRYPOINT and CMD).
func SigtermFix(command []string) string {
	switch {
	case ShellForm(command):
		return fmt.Sprintf("the image runs its command through a shell (%s, the shell form of CMD or ENTRYPOINT), which does not pass SIGTERM on: use the exec form, e.g. ENTRYPOINT [\"prog\", \"arg\"], or start the line with exec", Quote(command))
	case len(command) > 0 && strings.HasSuffix(command[0], ".sh"):
		return fmt.Sprintf("the entrypoint %s is a script: start its last line with exec (exec prog …) so that SIGTERM reaches the program, and have the program handle it", command[0])
	case len(command) > 0:
		return fmt.Sprintf("%s already runs in the exec form, as PID 1, so it gets SIGTERM and ignores it: as PID 1 a signal's default action does not apply, so the program must handle SIGTERM (stop accepting, finish what is in flight, exit; in Python, signal.signal(signal.SIGTERM, …), or a server that does, such as gunicorn), or run it under an init that does: ENTRYPOINT [\"tini\", \"--\", %s] (Debian's tini package)", path.Base(command[0]), strconv.Quote(command[0]))
	}
	return ruleByID("sigterm").Fix
}

// Sigterm judges sigterm from a stop as the engine does it when a
// solution sleeps: SIGTERM, then SIGKILL after grace. killed says the
// process was still running at the grace's end. At deploy (atDeploy) a
// failure only warns: the solution serves, but every sleep ends so.
func Sigterm(comp string, took, grace time.Duration, killed bool, exitCode int, command []string, atDeploy bool) Result {
	if !killed {
		return NewResult("sigterm", comp, Pass, fmt.Sprintf("exited %s after SIGTERM (code %d)", FormatDuration(took), exitCode))
	}
	st, ev := Fail, fmt.Sprintf("still running %s after SIGTERM", FormatDuration(grace))
	if atDeploy {
		st = Warn
		ev = fmt.Sprintf("a trial replica was still running %s after SIGTERM and was killed: every sleep of this solution waits %s, then ends it with SIGKILL", FormatDuration(grace), FormatDuration(grace))
	}
	res := NewResult("sigterm", comp, st, ev)
	res.Fix = SigtermFix(command)
	return res
}

var (
	notInPath  = regexp.MustCompile(`exec: "([^"]*)": executable file not found in \$PATH`)
	noSuchFile = regexp.MustCompile(`exec: "([^"]*)": stat [^:]*: no such file or directory`)
	noPerm     = regexp.MustCompile(`exec: "([^"]*)": permission denied`)
	badCwd     = regexp.MustCompile(`chdir to cwd \("([^"]*)"\) set in config.json failed: (.*)`)
	missingInt = regexp.MustCompile(`exec (\S+): no such file or directory`)
)

// CommandFailure judges starts for a container the engine could not
// start because of its command, from the engine's cause (CommandCause),
// the command (ENTRYPOINT and CMD) and the image's PATH.
func CommandFailure(comp, cause string, command []string, pathEnv string) Result {
	cmd := "the command " + Quote(command)
	if len(command) == 0 {
		cmd = "the image's command"
	}
	ev := fmt.Sprintf("the engine could not run %s: %s", cmd, cause)
	var fix string
	switch {
	case notInPath.MatchString(cause):
		prog := notInPath.FindStringSubmatch(cause)[1]
		where := "its PATH"
		if pathEnv != "" {
			where = "its PATH (" + pathEnv + ")"
		}
		fix = fmt.Sprintf("the image has no program %q in %s: install it in the image, or name it by its full path in ENTRYPOINT or CMD; a Python tool that is installed as a module runs as [\"python3\", \"-m\", %q, …]", prog, where, prog)
	case noSuchFile.MatchString(cause):
		prog := noSuchFile.FindStringSubmatch(cause)[1]
		fix = fmt.Sprintf("%s is not in the image: COPY it there, or correct the path in ENTRYPOINT or CMD (a relative path is taken from WORKDIR)", prog)
	case noPerm.MatchString(cause):
		prog := noPerm.FindStringSubmatch(cause)[1]
		fix = fmt.Sprintf("%s is not executable for the user the component runs as (uid 65534 for a root image): RUN chmod 755 %s in the Dockerfile", prog, prog)
	case badCwd.MatchString(cause):
		m := badCwd.FindStringSubmatch(cause)
		fix = fmt.Sprintf("the working directory %s cannot be entered (%s): make it readable by every user (chmod 755), as the component runs as uid 65534 unless runAsRoot", m[1], m[2])
	case strings.Contains(cause, "exec format error"):
		fix = "the program is built for another CPU architecture, or it is a script without a #! line: build it for this host's architecture, or start the script with #!/bin/sh"
	case missingInt.MatchString(cause):
		prog := missingInt.FindStringSubmatch(cause)[1]
		fix = fmt.Sprintf("%s exists but what it needs to run does not: the interpreter its #! line names, or the dynamic loader of a binary linked against another C library; install it, or build the binary statically (CGO_ENABLED=0)", prog)
	default:
		fix = "the engine could not start the process: check ENTRYPOINT and CMD against what the image holds"
	}
	res := NewResult("starts", comp, Fail, ev)
	res.Fix = fix
	return res
}

// A StartsCause is what the output of a process that exited says of why.
type StartsCause int

const (
	CauseUnknown StartsCause = iota
	CauseOOM
	CauseHome     // wrote to /nonexistent, the home directory
	CauseReadOnly // wrote outside /tmp
	CauseTmpHidden
	CausePermission
)

// StartsCauseOf reads the cause from what a process that exited said (its
// output, or the lines ErrorLines picked).
func StartsCauseOf(output string, oomKilled bool) StartsCause {
	low := strings.ToLower(output)
	switch {
	case oomKilled:
		return CauseOOM
	case strings.Contains(output, "/nonexistent"):
		// Before the read-only file system: the write it failed is the
		// home directory, which only HOME moves.
		return CauseHome
	case strings.Contains(low, "read-only file system"):
		return CauseReadOnly
	case strings.Contains(output, "/tmp/") && (strings.Contains(low, "no such file") || strings.Contains(low, "can't open file") || strings.Contains(low, "not found")):
		return CauseTmpHidden
	case strings.Contains(low, "permission denied"):
		return CausePermission
	}
	return CauseUnknown
}

// Fix is the starts rule's fix for the cause.
func (c StartsCause) Fix() string {
	switch c {
	case CauseOOM:
		return "it was killed for using more than its memory limit: " + ruleByID("memory-idle").Fix
	case CauseHome:
		return "it needs a writable home directory: set HOME in the component's env, e.g. HOME: /tmp (aim sets HOME=/tmp itself for uid 65534 unless the image or the env sets HOME)"
	case CauseReadOnly:
		return "it wrote outside /tmp, which is read-only: " + ruleByID("read-only-fs").Fix
	case CauseTmpHidden:
		return "it looks for a file under /tmp, which aim's empty tmpfs hides: " + ruleByID("image-tmp").Fix
	case CausePermission:
		return "it runs as uid 65534 (aim's user for a root image): make what it reads readable by every user (chmod -R a+rX), write only under /tmp, or set runAsRoot: true"
	}
	return ruleByID("starts").Fix
}

// StartsFix fits the starts rule's fix to what a process that exited said.
func StartsFix(output string, oomKilled bool) string {
	return StartsCauseOf(output, oomKilled).Fix()
}

// ImageTmp judges image-tmp from the image's WORKDIR and the paths it has
// under /tmp (a few are enough; more is "and more").
func ImageTmp(comp, workingDir string, files []string, more bool) Result {
	var ev []string
	if workingDir == "/tmp" || strings.HasPrefix(workingDir, "/tmp/") {
		ev = append(ev, fmt.Sprintf("WORKDIR is %s, under the tmpfs aim mounts at /tmp: the process starts in an empty directory", workingDir))
	}
	if len(files) > 0 {
		s := "the image has " + strings.Join(files, ", ")
		if more {
			s += " and more"
		}
		ev = append(ev, s+", hidden by the tmpfs at /tmp")
	}
	if len(ev) == 0 {
		return NewResult("image-tmp", comp, Pass, "nothing under /tmp")
	}
	return NewResult("image-tmp", comp, Warn, strings.Join(ev, "; "))
}

// WritesLost judges writes-lost from what a run wrote by the time it
// answered: outside /tmp (from a writable twin's diff) and under /tmp.
// tmpSeen says whether /tmp could be read at all.
func WritesLost(comp string, outside, tmp []string, tmpSeen bool) Result {
	wrote := append(append([]string(nil), outside...), tmp...)
	if len(wrote) > 0 {
		const show = 5
		s := strings.Join(wrote[:min(show, len(wrote))], ", ")
		if len(wrote) > show {
			s += fmt.Sprintf(" and %d more", len(wrote)-show)
		}
		return NewResult("writes-lost", comp, Warn, "wrote "+s+" by the time it answered: that, and whatever it writes later, is lost when it sleeps")
	}
	if !tmpSeen {
		return NewResult("writes-lost", comp, Skip, "what it wrote under /tmp could not be read (that needs the engine's host); whatever it writes is lost when it sleeps")
	}
	return NewResult("writes-lost", comp, Pass, "wrote nothing by the time it answered; whatever it writes later (in /tmp or a writable path) is lost when it sleeps")
}

// WritableFix is the fix of read-only-fs when a run wrote outside /tmp:
// the writable: line that names the directories it wrote (dirs; the
// whole line when the component has one already, replace), what
// the image has in them that an empty tmpfs would hide (hidden, by
// directory), and the writes at the top of the filesystem, which no
// writable path can take (atRoot).
func WritableFix(dirs []string, replace bool, hidden map[string][]string, atRoot []string) string {
	var parts []string
	verb := "add to the component in aim.yaml"
	if replace {
		verb = "make the component's line in aim.yaml"
	}
	if len(dirs) > 0 {
		parts = append(parts, verb+": writable: ["+strings.Join(dirs, ", ")+
			"] (each an empty tmpfs of 64Mi owned by the user it runs as and counted in its memory; {path: …, size: 256Mi} gives another size)")
	}
	for _, d := range dirs {
		if h := hidden[d]; len(h) > 0 {
			parts = append(parts, fmt.Sprintf("the tmpfs at %s hides what the image has there (%s): the program must make it anew, or keep it elsewhere", d, strings.Join(h, ", ")))
		}
	}
	if len(atRoot) > 0 {
		parts = append(parts, "it also wrote "+strings.Join(atRoot, ", ")+" at the top of the filesystem, which no writable path can take: write it in a directory")
	}
	if len(parts) == 0 {
		return ruleByID("read-only-fs").Fix
	}
	return strings.Join(parts, "; ")
}
