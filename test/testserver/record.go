package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"sync"
)

// recordPrefix starts each line record writes to stdout: the test reads
// them from the container's log, which no request through the gateway
// can reach or forge (a record's fields are JSON-escaped).
const recordPrefix = "aim-test-record "

// maxRecordBody bounds the body a record keeps.
const maxRecordBody = 1 << 20

var recordMu sync.Mutex

// record (RECORD=1) logs every request the server receives, as its own
// net/http read it, before serving it: method, target, Host, headers and
// body. test/e2e's smuggling cases compare it with what the gateway was
// sent, to prove no request reached this solution that the gateway did not
// route to it.
func record(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, maxRecordBody))
		r.Body = io.NopCloser(bytes.NewReader(body))
		line, _ := json.Marshal(map[string]any{
			"method": r.Method, "uri": r.RequestURI, "host": r.Host, "proto": r.Proto,
			"headers": r.Header, "body": string(body), "bodyError": errString(err),
			"remote": r.RemoteAddr, "solution": os.Getenv("AIM_SOLUTION"),
		})
		recordMu.Lock()
		fmt.Printf("%s%s\n", recordPrefix, line)
		recordMu.Unlock()
		next.ServeHTTP(w, r)
	})
}
