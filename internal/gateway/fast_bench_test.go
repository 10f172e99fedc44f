package gateway

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
)

// benchRoutes are the table sizes the benchmarks compare: one solution,
// and the 10,001 of bench/gateway's second aim, which should cost a
// request no more than a few per cent.
var benchRoutes = []int{1, 10001}

// addSleeping fills the table with n-1 sleeping solutions besides "s", as
// aim's store does at start.
func addSleeping(g *Gateway, n int) {
	for i := 1; i < n; i++ {
		g.Routes.Set(RouteSpec{Name: fmt.Sprintf("sol-%05d", i), State: StateSleeping,
			Upstreams: []Upstream{{Component: "web", Paths: []string{"/"}}}})
	}
}

// BenchmarkLookup finds one solution's route among n.
func BenchmarkLookup(b *testing.B) {
	for _, n := range benchRoutes {
		b.Run(fmt.Sprintf("routes=%d", n), func(b *testing.B) {
			g := New(Config{})
			g.Routes.Set(RouteSpec{Name: "s", State: StateReady})
			addSleeping(g, n)
			b.ReportAllocs()
			for b.Loop() {
				if g.Routes.lookup(g.solutionName("s.localhost")) == nil {
					b.Fatal("no route")
				}
			}
		})
	}
}

// BenchmarkFastPath proxies GET requests over one kept-alive connection
// to a replica that answers from a fixed buffer, so that the allocations
// it reports are the gateway's own: the fast path should make none a pool
// could save.
func BenchmarkFastPath(b *testing.B) {
	for _, n := range benchRoutes {
		b.Run(fmt.Sprintf("routes=%d", n), func(b *testing.B) { benchFastPath(b, n) })
	}
}

func benchFastPath(b *testing.B, routes int) {
	answer := []byte("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Type: text/plain\r\n\r\nhello")
	replica := listenRaw(b, func(c net.Conn) {
		br := bufio.NewReader(c)
		for {
			for {
				line, err := br.ReadSlice('\n')
				if err != nil {
					return
				}
				if len(line) == 2 {
					break
				}
			}
			if _, err := c.Write(answer); err != nil {
				return
			}
		}
	})
	g := New(Config{})
	g.Routes.Set(RouteSpec{Name: "s", State: StateReady, Limits: Limits{RPS: 1e9, Burst: 1e9}, Upstreams: []Upstream{{Component: "web", Paths: []string{"/"}, Addrs: []string{replica}}}})
	addSleeping(g, routes)
	front, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	s := NewServer(g, ServerConfig{})
	go s.Serve(front)
	defer s.Close()
	c, err := net.Dial("tcp", front.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	req := []byte("GET /path?q=1 HTTP/1.1\r\nHost: s.localhost\r\nUser-Agent: bench\r\nAccept: */*\r\n\r\n")
	br := bufio.NewReader(c)
	want := len("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Type: text/plain\r\n\r\nhello")
	buf := make([]byte, want)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Write(req); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(br, buf); err != nil {
			b.Fatal(err)
		}
		if !bytes.HasSuffix(buf, []byte("hello")) {
			b.Fatalf("answer %q", buf)
		}
	}
}

// BenchmarkHTTP2 proxies GET requests that arrive as HTTP/2 streams over
// TLS, 32 at a time on one connection, as bench/gateway's h2 case does;
// its allocations are the client's, net/http's server's and the
// gateway's together, so it is read as a difference between versions.
func BenchmarkHTTP2(b *testing.B) {
	body := bytes.Repeat([]byte("x"), 512)
	replica := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header()["Content-Type"] = []string{"text/html; charset=utf-8"}
		w.Header()["Content-Length"] = []string{"512"}
		w.Write(body)
	}))
	defer replica.Close()
	g := New(Config{})
	g.Routes.Set(RouteSpec{Name: "s", State: StateReady, Upstreams: []Upstream{{Component: "web", Paths: []string{"/"}, Addrs: []string{replica.Listener.Addr().String()}}}})
	s := NewServer(g, ServerConfig{Logger: slog.New(slog.DiscardHandler)})
	front := httptest.NewUnstartedServer(nil)
	front.Config = s.HTTP
	front.EnableHTTP2 = true
	front.StartTLS()
	defer front.Close()
	client := front.Client()
	client.Transport.(*http.Transport).ForceAttemptHTTP2 = true
	req, _ := http.NewRequest("GET", front.URL+"/", nil)
	req.Host = "s.localhost"
	b.ReportAllocs()
	b.SetParallelism(16) // 32 streams on 2 cores
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			resp, err := client.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			n, _ := io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || resp.ProtoMajor != 2 || n != 512 {
				b.Errorf("%s %d, %d bytes", resp.Proto, resp.StatusCode, n)
				return
			}
		}
	})
}
