package docker

import "testing"

func TestCommandCause(t *testing.T) {
	const wrap = "starting shop/web: Error response from daemon: failed to create shim task: OCI runtime create failed: runc create failed: unable to start container process: "
	for _, tc := range []struct {
		name, err, want string
		ok              bool
	}{
		{"not in PATH", wrap + `exec: "uvicorn": executable file not found in $PATH: unknown`, `exec: "uvicorn": executable file not found in $PATH`, true},
		{"no such file", wrap + `exec: "/app/run.sh": stat /app/run.sh: no such file or directory: unknown`, `exec: "/app/run.sh": stat /app/run.sh: no such file or directory`, true},
		{"working directory", wrap + `error during container init: chdir to cwd ("/root/app") set in config.json failed: permission denied: unknown`, `chdir to cwd ("/root/app") set in config.json failed: permission denied`, true},
		{"not about the process", "starting shop/web: Error response from daemon: driver failed programming external connectivity", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := CommandCause(tc.err)
			if got != tc.want || ok != tc.ok {
				t.Errorf("CommandCause = %q, %v; want %q, %v", got, ok, tc.want, tc.ok)
			}
		})
	}
}
