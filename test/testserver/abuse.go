package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// abuse adds what a hostile tenant would run, for the tests that prove
// each is stopped by the solution's own limits:
//
//	/abuse/fork    starts sleeping copies of itself until it cannot (pids)
//	/abuse/memory  allocates and touches ?mb MiB (memory; OOM-killed)
//	/abuse/tmp     writes /tmp full (the tmpfs's size)
//	/abuse/log     writes ?mb MiB to stdout (the engine's log rotation)
func abuse(mux *http.ServeMux) {
	mux.HandleFunc("/abuse/fork", func(w http.ResponseWriter, r *http.Request) {
		var kids []*exec.Cmd
		var err error
		for len(kids) < 100_000 {
			c := exec.Command("/proc/self/exe")
			c.Env = []string{"MODE=child"}
			if err = c.Start(); err != nil {
				break
			}
			kids = append(kids, c)
		}
		for _, c := range kids {
			_ = c.Process.Kill()
			_ = c.Wait()
		}
		report(w, map[string]any{"started": len(kids), "error": errString(err)})
	})
	mux.HandleFunc("/abuse/memory", func(w http.ResponseWriter, r *http.Request) {
		mb, _ := strconv.Atoi(r.URL.Query().Get("mb"))
		var hold [][]byte
		for i := 0; i < mb; i++ {
			b := make([]byte, 1<<20)
			for j := range b {
				if j%4096 == 0 {
					b[j] = 1
				}
			}
			hold = append(hold, b)
		}
		report(w, map[string]any{"allocated": len(hold)})
	})
	mux.HandleFunc("/abuse/tmp", func(w http.ResponseWriter, r *http.Request) {
		f, err := os.CreateTemp("/tmp", "fill-*")
		if err != nil {
			report(w, map[string]any{"written": 0, "error": err.Error()})
			return
		}
		defer os.Remove(f.Name())
		defer f.Close()
		chunk := make([]byte, 1<<20)
		var n int64
		for n < 8<<30 {
			k, werr := f.Write(chunk)
			n += int64(k)
			if werr != nil {
				err = werr
				break
			}
		}
		report(w, map[string]any{"written": n, "error": errString(err)})
	})
	mux.HandleFunc("/abuse/log", func(w http.ResponseWriter, r *http.Request) {
		mb, _ := strconv.Atoi(r.URL.Query().Get("mb"))
		line := strings.Repeat("flood ", 170) + "\n" // about 1 KiB
		start := time.Now()
		for i := 0; i < mb*1024; i++ {
			os.Stdout.WriteString(line)
		}
		report(w, map[string]any{"written": mb, "seconds": time.Since(start).Seconds()})
	})
}

// child is what /abuse/fork starts: it only waits to be killed.
func child() {
	if os.Getenv("MODE") == "child" {
		time.Sleep(time.Hour)
		os.Exit(0)
	}
}

func report(w http.ResponseWriter, v map[string]any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return fmt.Sprint(err)
}
