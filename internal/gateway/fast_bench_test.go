package gateway

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"testing"
)

// BenchmarkFastPath proxies GET requests over one kept-alive connection
// to a replica that answers from a fixed buffer, so that the allocations
// it reports are the gateway's own: the fast path should make none a pool
// could save.
func BenchmarkFastPath(b *testing.B) {
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
