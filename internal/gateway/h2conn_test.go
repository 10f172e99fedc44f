package gateway

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// tlsPair is a server-side batchConn and the client's end of it.
func tlsPair(t *testing.T) (*batchConn, *tls.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := make(chan *tls.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- nil
			return
		}
		sc := tls.Server(c, &tls.Config{Certificates: []tls.Certificate{testCert(t)}})
		_ = sc.Handshake()
		done <- sc
	}()
	cc, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	sc := <-done
	if sc == nil {
		t.Fatal("no connection accepted")
	}
	b := newBatchConn(sc)
	t.Cleanup(func() { b.Close(); cc.Close() })
	_ = cc.SetDeadline(time.Now().Add(10 * time.Second))
	return b, cc
}

// Writes from many goroutines reach the client whole and each in its
// place, and what is queued when the server closes still goes out.
func TestBatchConnWrites(t *testing.T) {
	b, cc := tlsPair(t)
	var want [8]bytes.Buffer
	var wg sync.WaitGroup
	for g := range want {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 500 {
				// Every line is one Write: the server writes whole frames.
				line := fmt.Sprintf("%d %d %s\n", g, i, bytes.Repeat([]byte{'a' + byte(g)}, i%300))
				want[g].WriteString(line)
				if _, err := b.Write([]byte(line)); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(cc)
	if err != nil {
		t.Fatal(err)
	}
	var each [8]bytes.Buffer
	for line := range bytes.Lines(got) {
		var g int
		if _, err := fmt.Sscanf(string(line), "%d ", &g); err != nil || g < 0 || g >= len(each) {
			t.Fatalf("a line cut or mixed with another: %q", line)
		}
		each[g].Write(line)
	}
	for g := range want {
		if !bytes.Equal(each[g].Bytes(), want[g].Bytes()) {
			t.Errorf("writer %d: got %d bytes, not the %d written in order", g, each[g].Len(), want[g].Len())
		}
	}
	if _, err := b.Write([]byte("x")); err == nil {
		t.Error("a write after Close succeeded")
	}
}

// A client that does not read holds the queue at batchMax (the writes
// wait, as they would on the socket) and a client that left makes the
// writes fail.
func TestBatchConnClientStops(t *testing.T) {
	b, cc := tlsPair(t)
	chunk := bytes.Repeat([]byte("z"), 4<<10)
	stuck := make(chan error, 1)
	go func() {
		for {
			if _, err := b.Write(chunk); err != nil {
				stuck <- err
				return
			}
		}
	}()
	// The socket's buffers fill, then the queue: the writer goroutine
	// waits in its write and Write in the queue's bound.
	for {
		b.mu.Lock()
		full := b.writing && len(b.queued)+len(chunk) > batchMax
		n := len(b.queued)
		b.mu.Unlock()
		if n > batchMax {
			t.Fatalf("%d bytes queued, past the bound of %d", n, batchMax)
		}
		if full {
			break
		}
		select {
		case err := <-stuck:
			t.Fatalf("a write failed before the client left: %v", err)
		case <-time.After(time.Millisecond):
		}
	}
	cc.Close()
	if err := <-stuck; err == nil {
		t.Fatal("no error once the client left")
	}
	if _, err := b.Write(chunk); err == nil {
		t.Error("a write succeeded after one failed")
	}
}
