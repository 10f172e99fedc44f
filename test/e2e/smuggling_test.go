package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/pkg/stdcopy"
)

// smuggleOutcome is what a raw request should get from the gateway: the
// statuses of the answers in order, whether the gateway closes the
// connection after the last, and what the recording backends saw of it
// ("solution METHOD target", and " body=…" when it had one).
type smuggleOutcome struct {
	want  []int
	close bool
	seen  []string
	// maybe may be seen, or not.
	maybe []string
}

// smuggleRow is one attack: raw bytes with {rec} and {by} (the recording
// solution's and the bystander's Host), {apex} and {id} (the row's own
// path segment, which tells its records apart).
type smuggleRow struct {
	name string
	req  string
	out  smuggleOutcome
}

// closed400 is a refusal: one 400, the connection closed, nothing sent on.
var closed400 = smuggleOutcome{want: []int{400}, close: true}

// cut400 is a body that broke once under way: 400 and closed, and the
// recorder may have seen the request's start, cut off where the body
// broke (the gateway streams bodies), but nothing after it.
var cut400 = smuggleOutcome{want: []int{400}, close: true, maybe: []string{"rec POST /s/{id}/front (cut)"}}

var smuggleRows = []smuggleRow{
	{name: "CL.TE", req: "POST /s/{id}/front HTTP/1.1\r\nHost: {rec}\r\nContent-Length: 48\r\nTransfer-Encoding: chunked\r\n\r\n" +
		"0\r\n\r\nGET /s/{id}/smuggled HTTP/1.1\r\nHost: {rec}\r\n\r\n",
		out: closed400},
	{name: "TE.CL", req: "POST /s/{id}/front HTTP/1.1\r\nHost: {rec}\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n" +
		"29\r\nGET /s/{id}/smuggled HTTP/1.1\r\nHost: x\r\n\r\n\r\n0\r\n\r\n",
		out: closed400},
	{name: "CL.TE with the smuggled request for the bystander", req: "POST /s/{id}/front HTTP/1.1\r\nHost: {rec}\r\nContent-Length: 47\r\nTransfer-Encoding: chunked\r\n\r\n" +
		"0\r\n\r\nGET /s/{id}/smuggled HTTP/1.1\r\nHost: {by}\r\n\r\n",
		out: closed400},
	{name: "two different Content-Lengths", req: "POST /s/{id}/front HTTP/1.1\r\nHost: {rec}\r\nContent-Length: 5\r\nContent-Length: 41\r\n\r\n" +
		"helloGET /s/{id}/smuggled HTTP/1.1\r\nHost: {rec}\r\n\r\n",
		out: closed400},
	{name: "the same Content-Length twice", req: "POST /s/{id}/front HTTP/1.1\r\nHost: {rec}\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello" +
		"GET /s/{id}/next HTTP/1.1\r\nHost: {rec}\r\n\r\n",
		out: smuggleOutcome{want: []int{200, 200}, seen: []string{"rec POST /s/{id}/front body=hello", "rec GET /s/{id}/next"}}},
	{name: "a Content-Length list", req: "POST /s/{id}/front HTTP/1.1\r\nHost: {rec}\r\nContent-Length: 5, 5\r\n\r\nhello", out: closed400},
	{name: "a signed Content-Length", req: "POST /s/{id}/front HTTP/1.1\r\nHost: {rec}\r\nContent-Length: +5\r\n\r\nhello", out: closed400},
	{name: "obs-fold in Transfer-Encoding", req: "POST /s/{id}/front HTTP/1.1\r\nHost: {rec}\r\nContent-Length: 5\r\nTransfer-Encoding:\r\n chunked\r\n\r\n" +
		"0\r\n\r\n", out: closed400},
	{name: "obs-fold in Host", req: "GET /s/{id}/front HTTP/1.1\r\nHost: {rec}\r\n {by}\r\n\r\n", out: closed400},
	{name: "obs-fold in another header", req: "GET /s/{id}/front HTTP/1.1\r\nHost: {rec}\r\nX-Fold: a\r\n b\r\n\r\n",
		// Unfolded to one space, as RFC 9112 lets a server do.
		out: smuggleOutcome{want: []int{200}, seen: []string{"rec GET /s/{id}/front"}}},
	{name: "bare LF line endings", req: "GET /s/{id}/front HTTP/1.1\nHost: {rec}\n\nGET /s/{id}/next HTTP/1.1\nHost: {by}\n\n",
		out: closed400},
	{name: "bare CR in a header", req: "GET /s/{id}/front HTTP/1.1\r\nHost: {rec}\r\nX-A: 1\rHost: {by}\r\n\r\n", out: closed400},
	{name: "a valid chunk extension", req: "POST /s/{id}/front HTTP/1.1\r\nHost: {rec}\r\nTransfer-Encoding: chunked\r\n\r\n" +
		"5;name=\"value\"\r\nhello\r\n0\r\n\r\n",
		out: smuggleOutcome{want: []int{200}, seen: []string{"rec POST /s/{id}/front body=hello"}}},
	{name: "a chunk extension with a bare LF", req: "POST /s/{id}/front HTTP/1.1\r\nHost: {rec}\r\nTransfer-Encoding: chunked\r\n\r\n" +
		"5;x\nhello\r\n0\r\n\r\nGET /s/{id}/smuggled HTTP/1.1\r\nHost: {rec}\r\n\r\n",
		out: cut400},
	{name: "a chunk extension with a bare CR", req: "POST /s/{id}/front HTTP/1.1\r\nHost: {rec}\r\nTransfer-Encoding: chunked\r\n\r\n" +
		"5;x\r0\r\n\r\nhello\r\n0\r\n\r\n",
		out: cut400},
	{name: "a chunk size past 64 bits", req: "POST /s/{id}/front HTTP/1.1\r\nHost: {rec}\r\nTransfer-Encoding: chunked\r\n\r\n" +
		"10000000000000005\r\nhello\r\n0\r\n\r\n",
		out: cut400},
	{name: "a chunk longer than it says", req: "POST /s/{id}/front HTTP/1.1\r\nHost: {rec}\r\nTransfer-Encoding: chunked\r\n\r\n" +
		"2\r\nhello\r\n0\r\n\r\n",
		out: cut400},
	{name: "Transfer-Encoding: chunked, identity", req: "POST /s/{id}/front HTTP/1.1\r\nHost: {rec}\r\nTransfer-Encoding: chunked, identity\r\n\r\n" +
		"5\r\nhello\r\n0\r\n\r\n",
		out: smuggleOutcome{want: []int{501}, close: true}},
	{name: "Transfer-Encoding: identity", req: "POST /s/{id}/front HTTP/1.1\r\nHost: {rec}\r\nTransfer-Encoding: identity\r\nContent-Length: 5\r\n\r\nhello",
		out: closed400},
	{name: "two Transfer-Encodings", req: "POST /s/{id}/front HTTP/1.1\r\nHost: {rec}\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: x\r\n\r\n" +
		"5\r\nhello\r\n0\r\n\r\n",
		out: smuggleOutcome{want: []int{501}, close: true}},
	{name: "a space before the colon", req: "POST /s/{id}/front HTTP/1.1\r\nHost: {rec}\r\nContent-Length: 5\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n",
		out: closed400},
	{name: "Transfer-Encoding and Content-Length on HTTP/1.0", req: "POST /s/{id}/front HTTP/1.0\r\nHost: {rec}\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
		out: closed400},
	{name: "two Hosts", req: "GET /s/{id}/front HTTP/1.1\r\nHost: {rec}\r\nHost: {by}\r\n\r\n", out: closed400},
	{name: "a Host with userinfo", req: "GET /s/{id}/front HTTP/1.1\r\nHost: {rec}@{by}\r\n\r\n", out: closed400},
	{name: "a NUL in a header", req: "GET /s/{id}/front HTTP/1.1\r\nHost: {rec}\r\nX-A: a\x00b\r\n\r\n", out: closed400},
	{name: "an HTTP/0.9 request line", req: "GET /s/{id}/front\r\n\r\n", out: closed400},
	{name: "pipelined, the second for the bystander", req: "GET /s/{id}/front HTTP/1.1\r\nHost: {rec}\r\n\r\nGET /s/{id}/other HTTP/1.1\r\nHost: {by}\r\n\r\n",
		out: smuggleOutcome{want: []int{200, 200}, seen: []string{"rec GET /s/{id}/front", "by GET /s/{id}/other"}}},
	{name: "pipelined, the second for the apex", req: "GET /s/{id}/front HTTP/1.1\r\nHost: {rec}\r\n\r\nGET /s/{id}/apex HTTP/1.1\r\nHost: {apex}\r\n\r\n",
		out: smuggleOutcome{want: []int{200, 404}, seen: []string{"rec GET /s/{id}/front"}}},
	{name: "pipelined after a chunked body, the second for the bystander", req: "POST /s/{id}/front HTTP/1.1\r\nHost: {rec}\r\nTransfer-Encoding: chunked\r\n\r\n" +
		"5\r\nhello\r\n0\r\n\r\nGET /s/{id}/other HTTP/1.1\r\nHost: {by}\r\n\r\n",
		out: smuggleOutcome{want: []int{200, 200}, seen: []string{"rec POST /s/{id}/front body=hello", "by GET /s/{id}/other"}}},
	{name: "pipelined after a Content-Length body, the second for the bystander", req: "POST /s/{id}/front HTTP/1.1\r\nHost: {rec}\r\nContent-Length: 5\r\n\r\n" +
		"helloGET /s/{id}/other HTTP/1.1\r\nHost: {by}\r\n\r\n",
		out: smuggleOutcome{want: []int{200, 200}, seen: []string{"rec POST /s/{id}/front body=hello", "by GET /s/{id}/other"}}},
	{name: "pipelined, the second for no solution", req: "GET /s/{id}/front HTTP/1.1\r\nHost: {rec}\r\n\r\nGET /s/{id}/other HTTP/1.1\r\nHost: nosuch.{apex}\r\n\r\n",
		out: smuggleOutcome{want: []int{200, 404}, seen: []string{"rec GET /s/{id}/front"}}},
	{name: "an absolute target naming the bystander", req: "GET http://{by}/s/{id}/front HTTP/1.1\r\nHost: {rec}\r\n\r\n",
		// RFC 9112: the target's host wins over Host, and the request is
		// the bystander's, with the bystander's Host.
		out: smuggleOutcome{want: []int{200}, seen: []string{"by GET /s/{id}/front"}}},
}

// TestSmuggling sends malformed and ambiguous heads, ambiguous framings
// and pipelined requests for other hosts to the gateway over raw TCP (and
// TLS), and checks each answer and what two recording solutions behind it
// saw: nothing the gateway did not route to them, no request smuggled in
// a body, none meant for another Host.
func TestSmuggling(t *testing.T) {
	img := recorderImage(t)
	t.Run("http", func(t *testing.T) {
		a := StartAim(t)
		deployRecorders(t, a, img)
		dial := func() (net.Conn, error) { return net.DialTimeout("tcp", a.Addr, 5*time.Second) }
		runSmuggling(t, a, dial, "localhost")
	})
	t.Run("https", func(t *testing.T) {
		httpsAddr := freeAddr(t)
		a := StartAim(t, "--domain", "aim.test", "--tls", "internal", "--https", httpsAddr)
		deployRecorders(t, a, img)
		resp, err := http.Get("http://" + a.Addr + "/ca.crt")
		if err != nil {
			t.Fatal(err)
		}
		caPEM, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		roots := x509.NewCertPool()
		if !roots.AppendCertsFromPEM(caPEM) {
			t.Fatalf("GET /ca.crt: %d %.200s", resp.StatusCode, caPEM)
		}
		dial := func() (net.Conn, error) {
			d := &tls.Dialer{NetDialer: &net.Dialer{Timeout: 5 * time.Second},
				Config: &tls.Config{RootCAs: roots, ServerName: "rec.aim.test", NextProtos: []string{"http/1.1"}}}
			return d.Dial("tcp", httpsAddr)
		}
		runSmuggling(t, a, dial, "aim.test")
	})
}

// recorderImage builds test/testserver under a tag of this process's
// own: TestImage's tag is shared by every checkout's e2e run on the
// engine, and one built from a tree without RECORD would record nothing.
func recorderImage(t *testing.T) string {
	t.Helper()
	img := fmt.Sprintf("aim-test/recorder:e2e-%d", os.Getpid())
	if err := BuildTestImage(context.Background(), docker, t.TempDir(), img); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = docker.ImageRemove(context.Background(), img, image.RemoveOptions{Force: true})
	})
	return img
}

func deployRecorders(t *testing.T, a *Aim, img string) {
	t.Helper()
	for _, name := range []string{"rec", "by"} {
		a.MustCLI("deploy", "-q", writeSolution(t, "name: "+name+"\ncomponents:\n  - name: web\n    image: "+img+
			"\n    env: {RECORD: \"1\"}\n", nil))
	}
}

func runSmuggling(t *testing.T, a *Aim, dial func() (net.Conn, error), domain string) {
	r := strings.NewReplacer("{rec}", "rec."+domain, "{by}", "by."+domain, "{apex}", domain)
	ids := map[string]string{}
	for i, row := range smuggleRows {
		id := fmt.Sprintf("r%02d", i)
		ids[id] = row.name
		out := row.out
		t.Run(row.name, func(t *testing.T) {
			c, err := dial()
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			req := r.Replace(strings.ReplaceAll(row.req, "{id}", id))
			answers, closed, err := rawExchange(c, req, len(out.want), out.close)
			var got []int
			for _, an := range answers {
				got = append(got, an.StatusCode)
				if an.Header.Get("Aim-Test-Started") != "" && an.StatusCode != 200 {
					t.Errorf("a solution answered %d: %s", an.StatusCode, an.Header)
				}
			}
			if !slices.Equal(got, out.want) {
				t.Errorf("answers %v (%v), want %v", got, err, out.want)
			}
			if out.close {
				if !closed {
					t.Errorf("the connection is still open after %v; want it closed", got)
				}
				if n := len(answers); n > 0 && answers[n-1].StatusCode >= 400 && !answers[n-1].Close {
					t.Errorf("the %d does not say Connection: close", answers[n-1].StatusCode)
				}
			}
		})
	}
	// Every attack has been answered: a last request to each recorder,
	// once logged, says that what the attacks left is logged too.
	recs := readRecords(t, a, domain)
	byID := map[string][]string{}
	for _, rc := range recs {
		if _, err := netip.ParseAddrPort(rc.Host); err == nil {
			continue // aim's own probes, to the container's address
		}
		if want := rc.Solution + "." + domain; rc.Host != want {
			t.Errorf("%s saw a request for Host %q: %s %s", rc.Solution, rc.Host, rc.Method, rc.URI)
		}
		seg := strings.SplitN(strings.TrimPrefix(rc.URI, "/s/"), "/", 2)[0]
		if !strings.HasPrefix(rc.URI, "/s/") || ids[seg] == "" {
			continue
		}
		key := rc.Solution + " " + rc.Method + " " + rc.URI
		switch {
		case rc.BodyError != "":
			key += " (cut)"
		case rc.Body != "":
			key += " body=" + rc.Body
		}
		byID[seg] = append(byID[seg], key)
	}
	for i, row := range smuggleRows {
		id := fmt.Sprintf("r%02d", i)
		out := row.out
		var want []string
		for _, s := range out.seen {
			want = append(want, r.Replace(strings.ReplaceAll(s, "{id}", id)))
		}
		got := slices.DeleteFunc(byID[id], func(k string) bool {
			for _, m := range out.maybe {
				if k == r.Replace(strings.ReplaceAll(m, "{id}", id)) {
					return true
				}
			}
			return false
		})
		sort.Strings(got)
		sort.Strings(want)
		if !slices.Equal(got, want) {
			t.Errorf("%s: the recorders saw %q, want %q", row.name, got, want)
		}
	}
}

// rawExchange writes req and reads answers: n of them when the connection
// is to stay open, else until the gateway closes it. closed says it did.
func rawExchange(c net.Conn, req string, n int, untilClose bool) (answers []*http.Response, closed bool, err error) {
	_ = c.SetDeadline(time.Now().Add(15 * time.Second))
	if _, err := io.WriteString(c, req); err != nil {
		return nil, false, err
	}
	br := bufio.NewReader(c)
	for untilClose || len(answers) < n {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			var ne net.Error
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || !errors.As(err, &ne) {
				// EOF, or a reset: the gateway closed the connection.
				return answers, true, nil
			}
			return answers, false, err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		answers = append(answers, resp)
	}
	return answers, false, nil
}

// record is one request a recording solution received (test/testserver's
// RECORD=1).
type record struct {
	Solution, Method, URI, Host, Body, BodyError string
	Headers                                      http.Header
}

// readRecords sends a last request to each recorder and reads their logs
// until both show it.
func readRecords(t *testing.T, a *Aim, domain string) []record {
	t.Helper()
	mark := fmt.Sprintf("/mark/%d", time.Now().UnixNano())
	for _, sol := range []string{"rec", "by"} {
		if code, body := markRecorder(t, a, sol, domain, mark); code != 200 {
			t.Fatalf("the mark to %s: %d %s", sol, code, body)
		}
	}
	var recs []record
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		recs = recs[:0]
		marks := 0
		for _, sol := range []string{"rec", "by"} {
			for _, rc := range containerRecords(t, a, sol) {
				if rc.URI == mark {
					marks++
				}
				recs = append(recs, rc)
			}
		}
		if marks == 2 {
			return recs
		}
	}
	t.Fatalf("the recorders' logs lack the mark %s", mark)
	return nil
}

// markRecorder sends the mark request to a recorder over plain HTTP, or
// HTTPS when the server has a domain of its own.
func markRecorder(t *testing.T, a *Aim, sol, domain, mark string) (int, string) {
	t.Helper()
	if domain == "localhost" {
		return a.Get(sol, mark)
	}
	cl := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, // the records, not the certificate, are under test
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, a.httpsAddr())
		},
	}}
	resp, err := cl.Get("https://" + sol + "." + domain + mark)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// httpsAddr is the --https address the server was started with.
func (a *Aim) httpsAddr() string {
	if i := slices.Index(a.extra, "--https"); i >= 0 && i+1 < len(a.extra) {
		return a.extra[i+1]
	}
	a.t.Fatal("the server has no --https")
	return ""
}

// containerRecords reads the records in the logs of a solution's
// containers.
func containerRecords(t *testing.T, a *Aim, sol string) []record {
	t.Helper()
	var recs []record
	for _, c := range a.Containers(sol) {
		rc, err := docker.ContainerLogs(context.Background(), c.ID, container.LogsOptions{ShowStdout: true})
		if err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		_, err = stdcopy.StdCopy(&out, io.Discard, rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		for line := range strings.SplitSeq(out.String(), "\n") {
			js, ok := strings.CutPrefix(line, "aim-test-record ")
			if !ok {
				continue
			}
			var r record
			if err := json.Unmarshal([]byte(js), &r); err != nil {
				t.Fatalf("a record of %s: %v: %s", sol, err, js)
			}
			recs = append(recs, r)
		}
	}
	return recs
}
