package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

const (
	// loadMemory is the memory aim serve must stay within.
	loadMemory = 512 << 20
	// idleConns is how many idle connections the gateway holds at once.
	idleConns = 10_000
)

// TestLoad runs aim serve in a memory cgroup of 512 MiB and puts the
// gateway under what a hostile tenant or its visitors can send: a flood on
// one solution, 10,000 idle connections, heads past the header limit and
// heads dribbled a byte at a time. It checks that the server stays up,
// answers a bystander solution throughout and is never OOM-killed, and
// reports the bystander's latency and the cgroup's peak.
func TestLoad(t *testing.T) {
	raiseFileLimit(t, idleConns+4000) // the idle, the slowloris and the flood connections
	cg := newMemCgroup(t, loadMemory)
	// Every client here is 127.0.0.1: without a rate limit, it stands for
	// the many addresses of a distributed flood, which a per-client limit
	// would not stop either.
	a := StartAimInCgroup(t, cg.Dir, "--read-header-timeout", "2s", "--conn-idle-timeout", "10m", "--rps", "0")
	pid := a.cmd.Process.Pid
	if n := openFileLimit(t, pid); n < idleConns+1000 {
		t.Fatalf("aim serve may open %d files; it must hold %d connections", n, idleConns)
	} else {
		t.Logf("aim serve's RLIMIT_NOFILE: %d", n)
	}
	a.MustCLI("deploy", "-q", writeSolution(t, "name: flood\ncomponents:\n  - name: web\n    image: "+TestImage+"\n", nil))
	a.MustCLI("deploy", "-q", writeSolution(t, "name: calm\ncomponents:\n  - name: web\n    image: "+TestImage+"\n", nil))
	calm := newBystander(t, a)

	calm.measure(t, "alone", 200)
	mem := func(when string) { t.Logf("aim serve's memory %s: %d MiB", when, cg.Current(t)>>20) }
	mem("with two solutions deployed")

	idle := openIdle(t, a, idleConns)
	defer idle.close()
	t.Logf("%d idle connections open; aim serve has %d files open", len(idle.conns), openFiles(t, pid))
	mem("holding them")

	t.Run("flood", func(t *testing.T) {
		stop := make(chan struct{})
		fl := flood(a, "flood", 64, stop)
		calm.measure(t, "during a flood of 64 clients, beside 10,000 idle connections", 500)
		close(stop)
		n, codes, dur := fl()
		t.Logf("the flood: %d requests in %s (%.0f/s), answers %v", n, dur.Round(time.Millisecond), float64(n)/dur.Seconds(), codes)
		if codes[200] == 0 {
			t.Errorf("the flooded solution answered nothing: %v", codes)
		}
		mem("after the flood")
	})

	t.Run("huge headers", func(t *testing.T) {
		for _, c := range []struct {
			name   string
			header http.Header
			want   int
		}{
			{"one of 8 KiB", http.Header{"X-Big": {strings.Repeat("x", 8<<10)}}, 200},
			{"one of 30 KiB", http.Header{"X-Big": {strings.Repeat("x", 30<<10)}}, 200},
			{"300 of 100 bytes", manyHeaders(300, 100), 200},
			{"one of 40 KiB", http.Header{"X-Big": {strings.Repeat("x", 40<<10)}}, 431},
			{"one of 64 KiB", http.Header{"X-Big": {strings.Repeat("x", 64<<10)}}, 431},
			{"500 of 100 bytes", manyHeaders(500, 100), 431},
		} {
			code, _, body := edgeRequest(t, a, calm.cl, "GET", "calm", "/whoami", nil, c.header)
			if code != c.want {
				t.Errorf("%s: %d %.200s, want %d", c.name, code, body, c.want)
			}
		}
		// Many at once: each is read only to the limit.
		stop := make(chan struct{})
		var sent, refused atomic.Int64
		var wg sync.WaitGroup
		big := "GET /whoami HTTP/1.1\r\nHost: calm.localhost\r\nX-Big: " + strings.Repeat("x", 1<<20) + "\r\n\r\n"
		for range 32 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					select {
					case <-stop:
						return
					default:
					}
					sent.Add(1)
					if code := rawStatus(a.Addr, big); code == 431 {
						refused.Add(1)
					}
				}
			}()
		}
		calm.measure(t, "during a flood of 1 MiB heads from 32 clients", 200)
		close(stop)
		wg.Wait()
		t.Logf("1 MiB heads: %d sent, %d answered 431 (the rest were cut off while sending)", sent.Load(), refused.Load())
		mem("after them")
	})

	t.Run("slowloris", func(t *testing.T) {
		const n = 1000
		head := "GET /whoami HTTP/1.1\r\nHost: calm.localhost\r\nUser-Agent: slow\r\n" + strings.Repeat("X-Pad: 0123456789\r\n", 10) + "\r\n"
		type result struct {
			first    string
			sent     int
			lasted   time.Duration
			answered bool
			got      string // what the server sent, when it did
		}
		results := make(chan result, n+2)
		dribble := func(first string) {
			r := result{first: first}
			c, err := net.Dial("tcp", a.Addr)
			if err != nil {
				results <- r
				return
			}
			defer c.Close()
			if first != "" {
				// A request answered first: the next head is dribbled on a
				// connection the server already served.
				br := bufio.NewReader(c)
				io.WriteString(c, first)
				if resp, err := http.ReadResponse(br, nil); err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
			}
			start := time.Now()
			got := make(chan bool, 1)
			go func() {
				b := make([]byte, 512)
				// Longer than the whole dribble: a head the server
				// neither answers nor drops shows as sent whole.
				_ = c.SetReadDeadline(time.Now().Add(2 * time.Minute))
				n, err := c.Read(b)
				r.got = string(b[:n])
				got <- err == nil
			}()
			for r.sent < len(head) {
				if _, err := c.Write([]byte{head[r.sent]}); err != nil {
					break
				}
				r.sent++
				select {
				case r.answered = <-got:
					r.lasted = time.Since(start)
					results <- r
					return
				case <-time.After(100 * time.Millisecond):
				}
			}
			r.answered = <-got
			r.lasted = time.Since(start)
			results <- r
		}
		for range n {
			go dribble("")
		}
		// One after a request on the fast path, one after a request
		// net/http served (an escaped path goes there).
		go dribble("GET /whoami HTTP/1.1\r\nHost: calm.localhost\r\n\r\n")
		go dribble("GET /who%61mi HTTP/1.1\r\nHost: calm.localhost\r\n\r\n")
		calm.measure(t, "beside 1000 slowloris connections", 300)
		var lasted []time.Duration
		for range n + 2 {
			r := <-results
			// The fast path closes the connection at the header timeout;
			// net/http (after a hand-off) answers 400 and closes, which
			// is as good.
			refused := strings.HasPrefix(r.got, "HTTP/1.1 400 ") && strings.Contains(r.got, "Connection: close")
			if r.answered && !refused || r.sent >= len(head) {
				t.Errorf("a dribbled head (after %q) was %s after %d of %d bytes (%s): %q; want the connection closed by the header timeout",
					r.first, map[bool]string{true: "answered", false: "left open"}[r.answered], r.sent, len(head), r.lasted.Round(time.Millisecond), r.got)
			}
			lasted = append(lasted, r.lasted)
		}
		slices.Sort(lasted)
		t.Logf("slowloris: %d connections closed by the server after %s (median), %s (longest), the header timeout being 2s",
			len(lasted), lasted[len(lasted)/2].Round(time.Millisecond), lasted[len(lasted)-1].Round(time.Millisecond))
		mem("after them")
	})

	t.Run("idle connections still served", func(t *testing.T) {
		// Every 100th idle connection takes one more request: the server
		// kept them, and they work.
		bad := 0
		for i := 0; i < len(idle.conns); i += 100 {
			if code := idle.request(i); code != 200 {
				bad++
			}
		}
		if bad > 0 {
			t.Errorf("%d of %d idle connections failed a second request", bad, len(idle.conns)/100)
		}
	})

	if resp, err := http.Get("http://" + a.Addr + "/healthz"); err != nil {
		t.Fatalf("aim serve does not answer at the end: %v", err)
	} else {
		resp.Body.Close()
	}
	if code, _ := a.Get("calm", "/whoami"); code != 200 {
		t.Errorf("the bystander answered %d at the end", code)
	}
	if n := cg.OOMKills(t); n != 0 {
		t.Errorf("the kernel OOM-killed %d processes of aim serve's cgroup (limit %d MiB)", n, loadMemory>>20)
	}
	t.Logf("aim serve's memory: peak %d MiB of a %d MiB limit", cg.Peak(t)>>20, loadMemory>>20)
}

// raiseFileLimit makes sure this process may open n files (it holds the
// clients' ends of every connection), raising the hard limit too (root).
func raiseFileLimit(t *testing.T, n uint64) {
	t.Helper()
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	if lim.Cur >= n {
		return
	}
	lim.Cur, lim.Max = n, max(lim.Max, n)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatalf("raising RLIMIT_NOFILE to %d: %v", n, err)
	}
}

// openFileLimit is the soft RLIMIT_NOFILE of process pid.
func openFileLimit(t *testing.T, pid int) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/limits", pid))
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "Max open files"); ok {
			if f := strings.Fields(rest); len(f) > 0 {
				if n, err := strconv.Atoi(f[0]); err == nil {
					return n
				}
			}
		}
	}
	t.Fatalf("no open files limit in /proc/%d/limits", pid)
	return 0
}

func openFiles(t *testing.T, pid int) int {
	t.Helper()
	es, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatal(err)
	}
	return len(es)
}

func manyHeaders(n, size int) http.Header {
	h := http.Header{}
	for i := range n {
		h.Set(fmt.Sprintf("X-H%d", i), strings.Repeat("x", size))
	}
	return h
}

// rawStatus sends req on a new connection and returns the answer's status,
// or 0 when the connection ended first.
func rawStatus(addr, req string) int {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return 0
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	go io.WriteString(c, req)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// bystander measures a solution's latency, one request at a time.
type bystander struct {
	a  *Aim
	cl *http.Client
}

func newBystander(t *testing.T, a *Aim) *bystander {
	return &bystander{a: a, cl: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 1}}}
}

// measure sends n requests to the bystander, 10 ms apart, fails the test
// for any that is not answered 200, and reports p50 and p99.
func (b *bystander) measure(t *testing.T, what string, n int) {
	t.Helper()
	var ds []time.Duration
	codes := map[int]int{}
	for range n {
		start := time.Now()
		code, _, _ := edgeRequest(t, b.a, b.cl, "GET", "calm", "/whoami", nil, nil)
		ds = append(ds, time.Since(start))
		codes[code]++
		time.Sleep(10 * time.Millisecond)
	}
	if codes[200] != n {
		t.Errorf("the bystander, %s: %v, want %d×200", what, codes, n)
	}
	slices.Sort(ds)
	t.Logf("the bystander's latency %s: p50 %s, p99 %s (%d requests)", what,
		ds[n/2].Round(10*time.Microsecond), ds[n*99/100].Round(10*time.Microsecond), n)
}

// flood sends requests to sol from clients goroutines until stop closes;
// the function it returns waits for them and says how many requests went,
// their statuses (0: an error) and for how long.
func flood(a *Aim, sol string, clients int, stop chan struct{}) func() (int64, map[int]int64, time.Duration) {
	tr := &http.Transport{MaxIdleConnsPerHost: clients}
	cl := &http.Client{Timeout: 30 * time.Second, Transport: tr}
	var mu sync.Mutex
	codes := map[int]int64{}
	var n atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			local := map[int]int64{}
			defer func() {
				mu.Lock()
				for k, v := range local {
					codes[k] += v
				}
				mu.Unlock()
			}()
			for {
				select {
				case <-stop:
					return
				default:
				}
				req, _ := http.NewRequest("GET", "http://"+a.Addr+"/whoami", nil)
				req.Host = sol + ".localhost"
				resp, err := cl.Do(req)
				n.Add(1)
				if err != nil {
					local[0]++
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				local[resp.StatusCode]++
			}
		}()
	}
	return func() (int64, map[int]int64, time.Duration) {
		wg.Wait()
		tr.CloseIdleConnections()
		return n.Load(), codes, time.Since(start)
	}
}

// idleSet is connections that each had one request answered and were
// then left open.
type idleSet struct {
	conns []net.Conn
	brs   []*bufio.Reader
}

func openIdle(t *testing.T, a *Aim, n int) *idleSet {
	t.Helper()
	s := &idleSet{conns: make([]net.Conn, n), brs: make([]*bufio.Reader, n)}
	var next atomic.Int64
	var failed atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				c, err := net.DialTimeout("tcp", a.Addr, 10*time.Second)
				if err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err)
					continue
				}
				s.conns[i], s.brs[i] = c, bufio.NewReaderSize(c, 512)
				if code := s.request(i); code != 200 {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, fmt.Errorf("answer %d", code))
				}
			}
		}()
	}
	wg.Wait()
	if f := failed.Load(); f > 0 {
		s.close()
		t.Fatalf("%d of %d connections could not be opened and served: %v", f, n, firstErr.Load())
	}
	return s
}

// request sends one request to the bystander on connection i.
func (s *idleSet) request(i int) int {
	c := s.conns[i]
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	defer c.SetDeadline(time.Time{})
	if _, err := io.WriteString(c, "GET /whoami HTTP/1.1\r\nHost: calm.localhost\r\n\r\n"); err != nil {
		return 0
	}
	resp, err := http.ReadResponse(s.brs[i], nil)
	if err != nil {
		return 0
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

func (s *idleSet) close() {
	for _, c := range s.conns {
		if c != nil {
			c.Close()
		}
	}
}
