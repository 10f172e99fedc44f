// Command probe is the client the Kubernetes e2e runs inside pods (its
// images are FROM scratch: no shell, no curl): "probe URL" asks URL once
// and exits 0 on any HTTP answer, or 1 when no connection could be made
// (a NetworkPolicy drops it, nothing listens), printing what happened.
package main

import (
	"fmt"
	"net/http"
	"os"
	"time"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: probe URL")
		os.Exit(2)
	}
	// Well below the test's own deadline, and long enough for a pod just
	// started on a busy machine.
	c := http.Client{Timeout: 4 * time.Second}
	start := time.Now()
	resp, err := c.Get(os.Args[1])
	if err != nil {
		fmt.Printf("no answer after %s: %v\n", time.Since(start).Round(time.Millisecond), err)
		os.Exit(1)
	}
	resp.Body.Close()
	fmt.Printf("answered %s after %s\n", resp.Status, time.Since(start).Round(time.Millisecond))
}
