// Command testserver is the tiny solution the integration tests run, FROM
// scratch. MODE selects a behaviour, good or broken, so that one binary
// covers every case of the packaging standard.
package main

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/coder/websocket"
)

// plantCookies is what a hostile solution tries (MODE=plant-cookies): a
// cookie for the whole parent domain (COOKIE_DOMAIN), and cookies under
// the names of aim's own sessions, to sign its visitors in as someone
// else on the apex or on another solution.
func plantCookies(w http.ResponseWriter) {
	domain := os.Getenv("COOKIE_DOMAIN")
	for _, c := range []string{
		"x=1; Domain=" + domain + "; Path=/",
		"__Host-aim_session=planted; Path=/; Secure",
		"aim_session=planted; Domain=" + domain + "; Path=/",
		"__Host-aim_sol=planted; Path=/; Secure",
	} {
		w.Header().Add("Set-Cookie", c)
	}
}

func originalPath(r *http.Request) string {
	if p := r.Header.Get("X-Original-Path"); p != "" {
		return p
	}
	return r.URL.Path
}

func main() {
	child()
	// When the process started, for test/e2e-kube's wake benchmark: a
	// wake's time to the process, which the kubelet's once-a-second relist
	// does not round (the pod's IP, and so the first answer, waits for it).
	startedAt := time.Now()
	started := strconv.FormatInt(startedAt.UnixNano(), 10)
	mode := os.Getenv("MODE")
	fmt.Printf("testserver starting: mode=%q component=%q\n", mode, os.Getenv("AIM_COMPONENT"))
	// TESTSERVER_PORT serves elsewhere than aim's 8080: for stand-ins the
	// tests run outside aim, on the host.
	port := cmp.Or(os.Getenv("TESTSERVER_PORT"), "8080")
	switch mode {
	case "crash":
		fmt.Println("fatal: cannot load the model file /models/x.bin")
		os.Exit(3)
	case "wrong-port":
		port = "5000"
	case "slow-start":
		d, _ := time.ParseDuration(os.Getenv("DELAY"))
		if d == 0 {
			d = 90 * time.Second
		}
		time.Sleep(d)
	case "crash-after":
		// Crashes at start once a moment has passed: lets a test deploy a
		// solution that will fail its next wake.
		at, _ := strconv.ParseInt(os.Getenv("CRASH_AFTER_UNIX"), 10, 64)
		if time.Now().Unix() >= at {
			fmt.Println("fatal: the model file is corrupt")
			os.Exit(4)
		}
	case "panic":
		// A Go program that logs its cause, then panics: the goroutine
		// stacks that follow bury the cause under lines of frames. Both
		// go to stderr, as Go's log package and a panic write them.
		fmt.Fprintln(os.Stderr, "level=error msg=\"loading the index\" err=\"open /models/index.json: no such file or directory\"")
		var index map[string]int
		index["model"] = 1
	case "home":
		// As Jupyter does at start: create its directories under HOME.
		home := os.Getenv("HOME")
		if err := os.MkdirAll(home+"/.local/share/jupyter/runtime", 0o700); err != nil {
			fmt.Printf("PermissionError: cannot create the runtime directory under HOME=%q: %v\n", home, err)
			os.Exit(1)
		}
	case "read-cwd":
		// Reads a file from its working directory, as `python3 app.py`
		// does.
		if _, err := os.ReadFile(os.Getenv("FILE")); err != nil {
			wd, _ := os.Getwd()
			fmt.Printf("testserver: can't open file '%s/%s': %v\n", wd, os.Getenv("FILE"), err)
			os.Exit(2)
		}
	case "write-tmp":
		// Keeps an upload under /tmp, as a notebook or an upload form does.
		if err := os.MkdirAll("/tmp/uploads", 0o755); err == nil {
			_ = os.WriteFile("/tmp/uploads/first.png", []byte("x"), 0o644)
		}
	case "write-fs":
		if err := os.WriteFile("/cache.bin", []byte("x"), 0o644); err != nil {
			fmt.Println("cannot write cache:", err)
		}
	case "write-dir":
		// Keeps its index in a directory of its own and stops without it,
		// as a database or nginx does.
		if err := os.MkdirAll("/data/index", 0o755); err != nil {
			fmt.Println("cannot open the index:", err)
			os.Exit(1)
		}
		if err := os.WriteFile("/data/index/segment-0", []byte("x"), 0o644); err != nil {
			fmt.Println("cannot open the index:", err)
			os.Exit(1)
		}
	case "internet":
		// Long enough that the attempt (SYN_SENT) is still there when a
		// loaded machine gets round to looking.
		c, err := net.DialTimeout("tcp", "198.51.100.1:443", 4*time.Second)
		if err == nil {
			c.Close()
		}
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Aim-Test-Started", started)
		switch mode {
		case "no-root":
			http.NotFound(w, r)
			return
		case "json-root":
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintln(w, `{"hello":"world"}`)
			return
		}
		if mode == "plant-cookies" {
			plantCookies(w)
		}
		host, _ := os.Hostname()
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, "<!doctype html><title>test</title><h1>hello from %s</h1><p>component %s, path %s</p>\n", host, os.Getenv("AIM_COMPONENT"), r.URL.Path)
	})
	// RECOMMENDED=1 adds what the standard recommends beyond its rules: a
	// health path and an OpenAPI document (aim check's corpus uses it).
	if os.Getenv("RECOMMENDED") == "1" {
		mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "ok") })
		mux.HandleFunc("/openapi.json", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintln(w, `{"openapi":"3.1.0","info":{"title":"testserver","version":"1"},"paths":{}}`)
		})
	}
	mux.HandleFunc("/whoami", func(w http.ResponseWriter, r *http.Request) {
		host, _ := os.Hostname()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"component": os.Getenv("AIM_COMPONENT"), "solution": os.Getenv("AIM_SOLUTION"), "hostname": host,
			"path": originalPath(r), "host": r.Host, "xff": r.Header.Get("X-Forwarded-For"), "uid": os.Getuid(),
			// GREETING tells versions of one solution apart (their
			// Dockerfiles set it).
			"greeting": os.Getenv("GREETING"),
		})
	})
	// /headers echoes the request's headers and cookies: what a solution
	// gets to see of its visitors (tests check that aim's credentials are
	// not among them).
	mux.HandleFunc("/headers", func(w http.ResponseWriter, r *http.Request) {
		cookies := map[string]string{}
		for _, c := range r.Cookies() {
			cookies[c.Name] = c.Value
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"host": r.Host, "headers": r.Header, "cookies": cookies})
	})
	// /dial?addr=host:port tries a TCP connection from inside the
	// container; tests use it to prove isolation.
	mux.HandleFunc("/dial", func(w http.ResponseWriter, r *http.Request) {
		addr := r.URL.Query().Get("addr")
		c, err := net.DialTimeout("tcp", addr, 2*time.Second)
		if err != nil {
			w.WriteHeader(http.StatusBadGateway)
			fmt.Fprintf(w, "dial %s: %v\n", addr, err)
			return
		}
		c.Close()
		fmt.Fprintf(w, "dial %s: ok\n", addr)
	})
	// /fetch?url= fetches a URL from inside the container.
	mux.HandleFunc("/fetch", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, r.URL.Query().Get("url"), nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			w.WriteHeader(http.StatusBadGateway)
			fmt.Fprintf(w, "fetch: %v\n", err)
			return
		}
		defer resp.Body.Close()
		w.WriteHeader(resp.StatusCode)
		_, _ = io.Copy(w, resp.Body)
	})
	mux.HandleFunc("/write", func(w http.ResponseWriter, r *http.Request) {
		p := r.URL.Query().Get("path")
		if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
			w.WriteHeader(http.StatusInternalServerError)
			fmt.Fprintf(w, "write %s: %v\n", p, err)
			return
		}
		fmt.Fprintf(w, "write %s: ok\n", p)
	})
	mux.HandleFunc("/sleep", func(w http.ResponseWriter, r *http.Request) {
		d, _ := time.ParseDuration(r.URL.Query().Get("d"))
		select {
		case <-time.After(d):
		case <-r.Context().Done():
		}
		// The local address tells replicas apart: they share a hostname.
		fmt.Fprintln(w, "slept", d, "on", r.Context().Value(http.LocalAddrContextKey))
	})
	// /echo reads the whole body and says how long it was.
	mux.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) {
		n, err := io.Copy(io.Discard, r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		fmt.Fprintln(w, "read", n)
	})
	mux.HandleFunc("/sse", func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.URL.Query().Get("n"))
		if n == 0 {
			n = 3
		}
		w.Header().Set("Content-Type", "text/event-stream")
		rc := http.NewResponseController(w)
		for i := 0; i < n; i++ {
			fmt.Fprintf(w, "data: %d\n\n", i)
			_ = rc.Flush()
			select {
			case <-time.After(100 * time.Millisecond):
			case <-r.Context().Done():
				return
			}
		}
	})
	// /ws echoes WebSocket messages.
	mux.HandleFunc("/ws", func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		for {
			typ, msg, err := c.Read(r.Context())
			if err != nil {
				return
			}
			if err := c.Write(r.Context(), typ, msg); err != nil {
				return
			}
		}
	})
	mux.HandleFunc("/exit", func(w http.ResponseWriter, r *http.Request) {
		code, _ := strconv.Atoi(r.URL.Query().Get("code"))
		fmt.Fprintln(w, "exiting", code)
		go func() { time.Sleep(50 * time.Millisecond); os.Exit(code) }()
	})
	readyAfter, _ := time.ParseDuration(os.Getenv("READY_AFTER"))
	if readyAfter == 0 {
		readyAfter = 2 * time.Second
	}
	if mode == "late-api" {
		// /-/ready is the readiness path a provider would name in
		// aim.yaml: 503 while the API is not ready (see below), then 200.
		mux.HandleFunc("/-/ready", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "ready") })
	}
	abuse(mux)
	// A component public under /api sees /api/... paths: route them as if
	// the prefix were not there, so one binary serves any component.
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if mode == "late-api" && r.URL.Path == "/" {
			firstRoot.CompareAndSwap(0, time.Now().UnixNano())
		}
		// late-api answers / at once and everything else with 503 for
		// its first two seconds (or READY_AFTER), as Prometheus does
		// until its storage is open (issue 20): a readiness rule that
		// asks / is satisfied too early. The two seconds count from the
		// first answer to /, when there is one, not from the start: on a
		// loaded machine a prober's first GET / can come later than that.
		if mode == "late-api" && r.URL.Path != "/" && time.Since(lateFrom(startedAt)) < readyAfter {
			http.Error(w, "not ready: opening storage", http.StatusServiceUnavailable)
			return
		}
		if rest, ok := strings.CutPrefix(r.URL.Path, "/api/"); ok {
			r2 := r.Clone(r.Context())
			r2.URL.Path = "/" + rest
			r2.Header.Set("X-Original-Path", r.URL.Path)
			r = r2
		}
		mux.ServeHTTP(w, r)
	})
	var h http.Handler = handler
	if os.Getenv("RECORD") == "1" {
		h = record(handler)
	}
	srv := &http.Server{Addr: ":" + port, Handler: h, ReadHeaderTimeout: 10 * time.Second}
	sig := make(chan os.Signal, 1)
	if mode == "ignore-sigterm" {
		signal.Ignore(syscall.SIGTERM)
	} else {
		signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
		go func() {
			<-sig
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = srv.Shutdown(ctx)
		}()
	}
	fmt.Println("listening on :" + port)
	if err := srv.ListenAndServe(); err != nil && err != http.ErrServerClosed {
		fmt.Println(err)
		os.Exit(1)
	}
}

// firstRoot is when late-api first answered / (Unix nanoseconds), 0 before.
var firstRoot atomic.Int64

// lateFrom is when late-api's 503s began: its first answer to /, or its
// start when nothing has asked / yet.
func lateFrom(started time.Time) time.Time {
	if n := firstRoot.Load(); n != 0 {
		return time.Unix(0, n)
	}
	return started
}
