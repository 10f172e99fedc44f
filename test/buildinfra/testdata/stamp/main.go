// Command stamp writes a file: the RUN step of the test's Dockerfile,
// which runs FROM scratch, so it must be a static binary.
package main

import (
	"fmt"
	"os"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: stamp FILE TEXT")
		os.Exit(2)
	}
	if err := os.WriteFile(os.Args[1], []byte(os.Args[2]+"\n"), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
