package docker

import "regexp"

// startCause is the reason in the engine's error about a container it
// could not start: runc's words after "unable to start container
// process: ", without the "unknown" the engine's error kind adds.
var startCause = regexp.MustCompile(`unable to start container process: (?:error during container init: )?(.*?)(?:: unknown)?$`)

// CommandCause extracts from the engine's error about a container that
// did not start the part that names the command ("exec: \"uvicorn\":
// executable file not found in $PATH"); ok is false when the error is not
// about the process.
func CommandCause(engineErr string) (cause string, ok bool) {
	m := startCause.FindStringSubmatch(engineErr)
	if m == nil {
		return "", false
	}
	return m[1], true
}
