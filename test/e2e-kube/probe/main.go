// Command probe is the client the Kubernetes e2e runs inside pods (its
// images are FROM scratch: no shell, no curl): "probe URL" asks URL again
// and again for a while and exits 0 at the first HTTP answer, or 1 when no
// attempt got one (a NetworkPolicy rejects or drops them, nothing
// listens), printing what happened.
//
// It keeps trying because the firewall of a new pod is written a moment
// after the pod starts: a single early attempt could be refused although
// the policy allows it. A connection the policy denies is refused for the
// whole while.
package main

import (
	"flag"
	"fmt"
	"net/http"
	"os"
	"time"
)

func main() {
	window := flag.Duration("for", 8*time.Second, "how long to keep trying")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: probe [-for DURATION] URL")
		os.Exit(2)
	}
	url := flag.Arg(0)
	c := http.Client{Timeout: 2 * time.Second}
	start := time.Now()
	attempts := 0
	var last error
	for time.Since(start) < *window {
		attempts++
		resp, err := c.Get(url)
		if err == nil {
			resp.Body.Close()
			fmt.Printf("answered %s after %s (attempt %d)\n", resp.Status, time.Since(start).Round(time.Millisecond), attempts)
			return
		}
		last = err
		time.Sleep(200 * time.Millisecond)
	}
	fmt.Printf("no answer in %d attempts over %s; the last: %v\n", attempts, time.Since(start).Round(time.Millisecond), last)
	os.Exit(1)
}
