package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// benchCase is one thing a visitor does, measured on every side.
type benchCase struct {
	name  string // what -cases selects it by
	title string
	tls   bool // served by the HTTPS listeners (aim's TLS instance)
	log   bool // with access logs on
	tool  string
	path  string
	// resume: new TLS connections resume the session of the previous
	// one (tool "tlsload").
	resume bool
}

var allCases = []benchCase{
	{name: "http1", title: "Plain HTTP/1.1 (wrk, keep-alive)", tool: "wrk", path: "/"},
	{name: "https1", title: "HTTPS/1.1 (wrk, keep-alive)", tls: true, tool: "wrk", path: "/"},
	{name: "h2", title: "HTTP/2 over TLS (h2load, many streams per connection)", tls: true, tool: "h2load", path: "/"},
	{name: "tls-full", title: "New TLS connections, full handshakes (one request each)", tls: true, tool: "tlsload", path: "/"},
	{name: "tls-resume", title: "New TLS connections, resumed with TLS 1.3 tickets (one request each)", tls: true, tool: "tlsload", path: "/", resume: true},
	{name: "http1-log", title: "Plain HTTP/1.1, access logs on", log: true, tool: "wrk", path: "/"},
	{name: "https1-log", title: "HTTPS/1.1, access logs on", tls: true, log: true, tool: "wrk", path: "/"},
	{name: "h2-log", title: "HTTP/2 over TLS, access logs on", tls: true, log: true, tool: "h2load", path: "/"},
	{name: "big", title: "A 1 MiB response (plain HTTP/1.1, wrk)", tool: "wrk", path: "/big"},
	{name: "stream", title: "A streamed response, 64 KiB in 16 chunks (plain HTTP/1.1, wrk)", tool: "wrk", path: "/stream"},
}

// selectCases reads -cases: "all" or names separated by commas.
func selectCases(s string, accessLog bool) ([]benchCase, error) {
	if s == "" || s == "all" {
		var out []benchCase
		for _, c := range allCases {
			if accessLog || !c.log {
				out = append(out, c)
			}
		}
		return out, nil
	}
	var out []benchCase
	for n := range strings.SplitSeq(s, ",") {
		n = strings.TrimSpace(n)
		found := false
		for _, c := range allCases {
			if c.name == n {
				out, found = append(out, c), true
			}
		}
		if !found {
			var names []string
			for _, c := range allCases {
				names = append(names, c.name)
			}
			return nil, fmt.Errorf("-cases: no case %q (there are: all, %s)", n, strings.Join(names, ", "))
		}
	}
	return out, nil
}

// side is one proxy as the cases see it.
type side struct {
	name             string
	plain, tls       string // listen addresses; tls empty if it has none
	plainCPU, tlsCPU func() (time.Duration, error)
}

// measure runs one case once against one side, and charges the side's
// process with the CPU time it used.
func measure(ctx context.Context, c config, bc benchCase, s side, d time.Duration, dir string) (result, error) {
	cpu := s.plainCPU
	if bc.tls {
		cpu = s.tlsCPU
	}
	c0, err := cpu()
	if err != nil {
		return result{}, err
	}
	var r result
	switch {
	case bc.tool == "wrk" && bc.tls:
		_, port, _ := strings.Cut(s.tls, ":")
		r, err = c.load.run(ctx, "https://"+c.load.Host+":"+port+bc.path, d)
	case bc.tool == "wrk":
		r, err = c.load.run(ctx, "http://"+s.plain+bc.path, d)
	case bc.tool == "h2load":
		r, err = c.load.runH2(ctx, c.h2, s.tls, bc.path, filepath.Join(dir, "h2load.log"), d)
	case bc.tool == "tlsload":
		r, err = c.load.runTLS(ctx, tlsLoad{Addr: s.tls, ServerName: c.load.Host, Path: bc.path,
			Resume: bc.resume, Workers: c.tlsConns, Duration: d})
	default:
		return r, fmt.Errorf("case %s: no tool %q", bc.name, bc.tool)
	}
	if err != nil {
		return r, err
	}
	c1, err := cpu()
	if err != nil {
		return r, err
	}
	if r.Requests > 0 {
		r.CPU = (c1 - c0) / time.Duration(r.Requests)
	}
	return r, nil
}

// compareCase drives each side in turn: a warm-up each, then rounds in
// which every side runs once, the order rotating from round to round and
// reversed every other round, so that a trend in the machine's other load
// weighs on all alike.
func compareCase(ctx context.Context, c config, bc benchCase, sides []side, dir string) (phase, error) {
	p := phase{title: bc.title, name: bc.name}
	for _, s := range sides {
		p.sides = append(p.sides, s.name)
	}
	if c.warmup > 0 {
		for _, s := range sides {
			if _, err := measure(ctx, c, bc, s, c.warmup, dir); err != nil {
				return p, fmt.Errorf("%s: warming up %s: %w", bc.name, s.name, err)
			}
		}
	}
	p.res = make([][]result, len(sides))
	for round := range c.rounds {
		for k := range sides {
			i := (round + k) % len(sides)
			if round%2 == 1 {
				// Every other round backwards, so that no side always
				// follows the same one (the 10,001-solution aim always
				// came right after the other aim).
				i = (round + len(sides) - k) % len(sides)
			}
			r, err := measure(ctx, c, bc, sides[i], c.duration, dir)
			if err != nil {
				return p, fmt.Errorf("%s, round %d, %s: %w", bc.name, round+1, sides[i].name, err)
			}
			fmt.Fprintf(os.Stderr, "  %-10s round %d %-10s %9.0f req/s  p50 %-9s p99 %-9s CPU %s/req\n",
				bc.name, round+1, sides[i].name, r.RPS, ms(r.P50), ms(r.P99), us(r.CPU))
			p.res[i] = append(p.res[i], r)
		}
	}
	return p, nil
}

func us(d time.Duration) string { return fmt.Sprintf("%.0f µs", float64(d)/float64(time.Microsecond)) }
