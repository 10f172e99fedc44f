package gateway

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"slices"
	"testing"
)

// BenchmarkFastPathBodies proxies answers longer than the buffers over
// one kept-alive connection: 1 MiB with a length, and 64 KiB in 16 chunks
// written one by one, as bench/gateway's big and stream cases do. Its
// time includes the replica's and the client's, the same for any proxy.
func BenchmarkFastPathBodies(b *testing.B) {
	big := append([]byte("HTTP/1.1 200 OK\r\nContent-Length: 1048576\r\n\r\n"), bytes.Repeat([]byte("x"), 1<<20)...)
	chunk := append([]byte("1000\r\n"), append(bytes.Repeat([]byte("y"), 4096), "\r\n"...)...)
	for _, tc := range []struct {
		name   string
		answer [][]byte
	}{
		{"1MiB", [][]byte{big}},
		{"stream", append(append([][]byte{[]byte("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")}, slices.Repeat([][]byte{chunk}, 16)...), []byte("0\r\n\r\n"))},
	} {
		b.Run(tc.name, func(b *testing.B) {
			want := 0
			for _, p := range tc.answer {
				want += len(p)
			}
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
					for _, p := range tc.answer {
						if _, err := c.Write(p); err != nil {
							return
						}
					}
				}
			})
			g := New(Config{})
			routeTo(g, replica, Limits{})
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
			req := []byte("GET / HTTP/1.1\r\nHost: s.localhost\r\n\r\n")
			buf := make([]byte, want)
			b.SetBytes(int64(want))
			for b.Loop() {
				if _, err := c.Write(req); err != nil {
					b.Fatal(err)
				}
				if _, err := io.ReadFull(c, buf); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
