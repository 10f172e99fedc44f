package e2e

import (
	"bufio"
	"context"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"
)

const nodeImage = "aim-base/node:bookworm"

// nodeApp is an express app as a Node.js developer writes one: a page,
// and a stream of server-sent events that sends the next event each time
// POST /next is called, so that the test can tell events delivered one by
// one from events held back until the stream ends, without timing.
const nodeApp = `const express = require('express');
const app = express();
const streams = new Set();
let n = 0;

app.get('/', (req, res) => res.send('<!doctype html><title>events</title><h1>events</h1>'));

app.get('/events', (req, res) => {
  res.set({'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache'});
  res.flushHeaders();
  res.write('data: hello\n\n');
  streams.add(res);
  req.on('close', () => streams.delete(res));
});

app.post('/next', (req, res) => {
  n++;
  for (const s of streams) s.write('data: event ' + n + '\n\n');
  if (n === 3) for (const s of streams) s.end();
  res.send('sent ' + n + '\n');
});

app.listen(process.env.PORT || 8080, () => console.log('listening on', process.env.PORT || 8080));
`

// TestNodeExpressStreamsEvents (issue 16, acceptance 1): a Node.js app
// with express from npm, built FROM Debian's nodejs, deploys with a
// three-line component and no change for aim, and its server-sent
// events pass the gateway one by one: each arrives while the stream is
// still open, before the next is sent.
func TestNodeExpressStreamsEvents(t *testing.T) {
	if out, err := exec.Command("../../images/build.sh", "node").CombinedOutput(); err != nil {
		t.Fatalf("building %s (images/build.sh node: Debian's nodejs on a debootstrap root, express from npm; needs root): %v\n%s", nodeImage, err, out)
	}
	a := StartAim(t)
	dir := writeSolution(t, "name: events\ncomponents:\n  - name: web\n    build: .\n", map[string]string{
		"Dockerfile": "FROM " + nodeImage + "\nCOPY server.js /app/server.js\nCMD [\"node\", \"/app/server.js\"]\n",
		"server.js":  nodeApp,
	})
	out, errOut, err := a.CLI("deploy", dir)
	if err != nil {
		t.Fatalf("the express app did not deploy: %v\n%s%s", err, out, errOut)
	}
	t.Logf("aim deploy:\n%s%s", errOut, out)
	if code, body := a.Get("events", "/"); code != 200 || !strings.Contains(body, "<h1>events</h1>") {
		t.Fatalf("GET / through the gateway: %d %.200s", code, body)
	}

	// A generous bound, for a stuck stream only: no step is timed.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+a.Addr+"/events", nil)
	req.Host = "events.localhost"
	req.Header.Set("Accept", "text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != 200 || !strings.HasPrefix(ct, "text/event-stream") {
		t.Fatalf("GET /events: %d %s", resp.StatusCode, ct)
	}
	lines := bufio.NewScanner(resp.Body)
	next := func() string {
		for lines.Scan() {
			if l := lines.Text(); strings.HasPrefix(l, "data: ") {
				return strings.TrimPrefix(l, "data: ")
			}
		}
		return "(the stream ended: " + errString(lines.Err()) + ")"
	}
	if got := next(); got != "hello" {
		t.Fatalf("the first event, sent as the stream opened: %q", got)
	}
	for i, want := range []string{"event 1", "event 2", "event 3"} {
		// The app sends the next event only when asked: an event held
		// back by the gateway until the stream ends never arrives here.
		preq, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+a.Addr+"/next", nil)
		preq.Host = "events.localhost"
		presp, err := http.DefaultClient.Do(preq)
		if err != nil {
			t.Fatalf("POST /next: %v", err)
		}
		presp.Body.Close()
		if got := next(); got != want {
			t.Fatalf("event %d: got %q, want %q", i+1, got, want)
		}
	}
}

func errString(err error) string {
	if err == nil {
		return "EOF"
	}
	return err.Error()
}
