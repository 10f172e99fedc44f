package gateway

import (
	"bytes"
	"strconv"
)

// The fast path's reading of HTTP/1.1 heads. It accepts a strict subset of
// what RFC 9112 allows and net/http takes: anything outside it is not an
// error here but a reason to let net/http serve the request, which then
// validates, answers 400 or 431, or proxies it the general way. Being
// stricter than net/http is what keeps the two from ever reading one
// request differently (the root of request smuggling).

// reqHead is what the fast path needs of a request head. Its slices point
// into the head, which stays in the connection's read buffer until the
// answer is under way.
type reqHead struct {
	head   []byte // the request line through the blank line
	line   []byte // the request line with its CRLF
	method string // GET, HEAD, POST or PUT
	isHead bool
	length int64  // of the body; POST and PUT only
	body   []byte // the body, in the read buffer after the head
	// noLength is a POST or PUT without Content-Length: its empty body is
	// said explicitly to the replica, as net/http's client does.
	noLength bool
	target   []byte // the request-target: path and query
	path     []byte // the target before '?'
	host     []byte
	ua       []byte
	ref      []byte // Referer, for the access log
	close    bool   // the client said Connection: close
	html     bool   // a GET asking for text/html: a page view
	xff      bool   // it sent X-Forwarded-For
}

// Header kinds, by what the fast path does with them.
const (
	hdrOther   = iota // forwarded as it came
	hdrHost           // forwarded; names the solution
	hdrUA             // forwarded; tells bots apart
	hdrReferer        // forwarded; logged
	hdrAccept         // forwarded, unless it asks for an event stream
	hdrConn           // Connection: read, not forwarded
	hdrLength         // Content-Length: only "0" passes
	hdrXFF            // X-Forwarded-For: written anew
	hdrHop            // hop-by-hop or written anew: dropped
	hdrSlow           // only net/http handles these
	hdrCookie         // forwarded, unless it carries aim's cookies
)

// hdrKind classifies a header name (any case) for requests.
func hdrKind(name []byte) int {
	switch len(name) {
	case 2:
		if eqFold(name, "te") {
			return hdrHop
		}
	case 4:
		if eqFold(name, "host") {
			return hdrHost
		}
	case 6:
		if eqFold(name, "accept") {
			return hdrAccept
		}
		if eqFold(name, "cookie") {
			return hdrCookie
		}
		if eqFold(name, "expect") {
			return hdrSlow
		}
	case 7:
		if eqFold(name, "referer") {
			return hdrReferer
		}
		if eqFold(name, "upgrade") || eqFold(name, "trailer") {
			return hdrSlow
		}
	case 9:
		if eqFold(name, "forwarded") {
			return hdrHop
		}
	case 11:
		if eqFold(name, "x-aim-token") {
			return hdrSlow // aim's credential: net/http strips it
		}
	case 10:
		if eqFold(name, "user-agent") {
			return hdrUA
		}
		if eqFold(name, "connection") {
			return hdrConn
		}
		if eqFold(name, "keep-alive") {
			return hdrHop
		}
	case 14:
		if eqFold(name, "content-length") {
			return hdrLength
		}
	case 15:
		if eqFold(name, "x-forwarded-for") {
			return hdrXFF
		}
	case 16:
		if eqFold(name, "proxy-connection") || eqFold(name, "x-forwarded-host") {
			return hdrHop
		}
	case 17:
		if eqFold(name, "transfer-encoding") {
			return hdrSlow
		}
		if eqFold(name, "x-forwarded-proto") {
			return hdrHop
		}
	case 18:
		if eqFold(name, "proxy-authenticate") {
			return hdrHop
		}
	case 19:
		if eqFold(name, "proxy-authorization") {
			return hdrHop
		}
	}
	return hdrOther
}

// endOfHead returns the length of the head at the start of b (through
// "\r\n\r\n"), or -1 when b holds no complete head.
func endOfHead(b []byte) int {
	if i := bytes.Index(b, crlfcrlf); i >= 0 {
		return i + 4
	}
	return -1
}

var crlfcrlf = []byte("\r\n\r\n")

// parseRequest reads a complete head (as endOfHead delimits it) into h.
// It is true only for a request the fast path takes: GET or HEAD without
// a body, or POST or PUT with at most a Content-Length; an origin-form
// target of plain characters, HTTP/1.1, one Host, no chunked body, no
// upgrade, no expectation, no event stream, and nothing obsolete or
// malformed (folded lines, bare LF, control characters, bad names).
func parseRequest(head []byte, h *reqHead) bool {
	*h = reqHead{head: head}
	eol := bytes.IndexByte(head, '\n')
	if eol < 1 || head[eol-1] != '\r' {
		return false
	}
	h.line = head[:eol+1]
	rl := head[:eol-1]
	switch {
	case bytes.HasPrefix(rl, []byte("GET ")):
		rl, h.method = rl[4:], "GET"
	case bytes.HasPrefix(rl, []byte("HEAD ")):
		rl, h.method, h.isHead = rl[5:], "HEAD", true
	case bytes.HasPrefix(rl, []byte("POST ")):
		rl, h.method = rl[5:], "POST"
	case bytes.HasPrefix(rl, []byte("PUT ")):
		rl, h.method = rl[4:], "PUT"
	default:
		return false
	}
	body := h.method == "POST" || h.method == "PUT"
	sp := bytes.IndexByte(rl, ' ')
	if sp < 1 || string(rl[sp+1:]) != "HTTP/1.1" {
		return false
	}
	h.target = rl[:sp]
	if h.target[0] != '/' {
		return false
	}
	h.path = h.target
	if q := bytes.IndexByte(h.target, '?'); q >= 0 {
		h.path = h.target[:q]
		for _, c := range h.target[q+1:] {
			if c <= ' ' || c >= 0x7f || c == '#' {
				return false
			}
		}
	}
	for _, c := range h.path {
		if !pathChar[c] {
			return false
		}
	}

	rest := head[eol+1:]
	length := false
	for {
		eol := bytes.IndexByte(rest, '\n')
		if eol < 1 || rest[eol-1] != '\r' {
			return false
		}
		line := rest[:eol-1]
		rest = rest[eol+1:]
		if len(line) == 0 {
			break // the blank line
		}
		name, value, ok := splitHeader(line)
		if !ok {
			return false
		}
		switch hdrKind(name) {
		case hdrHost:
			if h.host != nil || len(value) == 0 {
				return false
			}
			h.host = value
		case hdrUA:
			h.ua = value
		case hdrReferer:
			h.ref = value
		case hdrAccept:
			if bytes.Contains(value, []byte("text/event-stream")) {
				return false
			}
			h.html = bytes.Contains(value, []byte("text/html"))
		case hdrCookie:
			// aim's cookies are its credentials; net/http strips them
			// (stripCredentials). Any "aim_" in any case: a cookie the
			// fast path cannot prove harmless goes the careful way.
			if containsFold(value, "aim_") {
				return false
			}
		case hdrConn:
			for tok := range bytes.SplitSeq(value, []byte(",")) {
				tok = trimOWS(tok)
				switch {
				case eqFold(tok, "close"):
					h.close = true
				case len(tok) == 0, eqFold(tok, "keep-alive"):
				default:
					// It names headers to drop; net/http does that.
					return false
				}
			}
		case hdrLength:
			if length {
				return false
			}
			length = true
			n, ok := parseLength(value)
			if !ok || n > 0 && !body {
				return false
			}
			h.length = n
		case hdrXFF:
			h.xff = true
		case hdrSlow:
			return false
		}
	}
	h.noLength = body && !length
	return h.host != nil && len(rest) == 0
}

// twoFramings reports whether a head names both Content-Length and
// Transfer-Encoding, in any case and whatever their values: the request
// whose end two parsers are likeliest to disagree on (CL.TE, TE.CL).
// RFC 9112 lets a server refuse it, and nginx does; net/http reads the
// body by Transfer-Encoding instead, so the fast path answers it itself.
// Lines that are not "Name:" (folded ones) are passed over: a folded
// Transfer-Encoding still names it on its first line.
func twoFramings(head []byte) bool {
	cl, te := false, false
	for line := range bytes.SplitSeq(head, []byte("\n")) {
		colon := bytes.IndexByte(line, ':')
		if colon < 0 {
			continue
		}
		name := line[:colon]
		cl = cl || eqFold(name, "content-length")
		te = te || eqFold(name, "transfer-encoding")
	}
	return cl && te
}

// parseLength reads a Content-Length: digits only, no sign, no spaces,
// no list, and short enough not to overflow.
func parseLength(v []byte) (int64, bool) {
	if len(v) == 0 || len(v) > 18 {
		return 0, false
	}
	var n int64
	for _, c := range v {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// splitHeader splits "Name: value" and checks both: a token for the name,
// no control characters but tab in the value.
func splitHeader(line []byte) (name, value []byte, ok bool) {
	colon := bytes.IndexByte(line, ':')
	if colon < 1 {
		return nil, nil, false
	}
	name = line[:colon]
	for _, c := range name {
		if !tokenChar[c] {
			return nil, nil, false
		}
	}
	value = trimOWS(line[colon+1:])
	for _, c := range value {
		if c < ' ' && c != '\t' || c == 0x7f {
			return nil, nil, false
		}
	}
	return name, value, true
}

func trimOWS(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

// eqFold compares b with the lower-case ASCII s, ignoring case.
func eqFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := 0; i < len(b); i++ {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != s[i] {
			return false
		}
	}
	return true
}

// tokenChar marks RFC 9110's tchar.
var tokenChar = func() (t [256]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c], t[c-'a'+'A'] = true, true
	}
	for _, c := range "!#$%&'*+-.^_`|~" {
		t[c] = true
	}
	return t
}()

// pathChar marks what the fast path accepts in a path: RFC 3986's
// unreserved and sub-delims, ':', '@' and '/'. Not '%': a path with
// escapes is decoded by net/http before the gateway routes it by prefix,
// and only net/http should do that.
var pathChar = func() (t [256]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c], t[c-'a'+'A'] = true, true
	}
	for _, c := range "-._~!$&'()*+,;=:@/" {
		t[c] = true
	}
	return t
}()

// respHead is what the fast path learned of an answer's head.
type respHead struct {
	status  int
	length  int64 // -1 when unknown
	chunked bool
	close   bool // the replica will close the connection after it
}

// readResponseHead reads an answer's head from the replica, and appends
// it to dst as the client is to get it: HTTP/1.1, without the hop-by-hop
// headers. Interim answers (1xx but 101) are read and appended too,
// until the final one. An error means the answer is of no use to the fast
// path, which then leaves the request to net/http.
func readResponseHead(r lineReader, dst []byte) ([]byte, respHead, error) {
	for {
		var h respHead
		var err error
		dst, h, err = readOneHead(r, dst)
		if err != nil || h.status >= 200 {
			return dst, h, err
		}
		dst = append(dst, "\r\n"...) // the interim answer ends here
	}
}

// maxRespHead bounds an answer's head, as http.Transport's
// MaxResponseHeaderBytes does.
const maxRespHead = 1 << 20

// lineReader is the part of bufio.Reader the head reader needs.
type lineReader interface {
	ReadSlice(delim byte) ([]byte, error)
}

func readOneHead(r lineReader, dst []byte) ([]byte, respHead, error) {
	h := respHead{length: -1}
	start := len(dst)
	line, err := readLine(r)
	if err != nil {
		return dst, h, err
	}
	// "HTTP/1.x 200 OK"
	if len(line) < 12 || string(line[:7]) != "HTTP/1." || line[8] != ' ' || (len(line) > 12 && line[12] != ' ') {
		return dst, h, errBadAnswer
	}
	code, err := strconv.Atoi(string(line[9:12]))
	if err != nil || code < 100 || code == 101 {
		return dst, h, errBadAnswer
	}
	h.status = code
	h.close = line[7] == '0'
	dst = append(dst, "HTTP/1.1"...)
	dst = append(dst, line[8:]...)
	dst = append(dst, "\r\n"...)
	var te []byte
	for {
		line, err := readLine(r)
		if err != nil {
			return dst, h, err
		}
		if len(line) == 0 {
			break
		}
		if len(dst)-start > maxRespHead {
			return dst, h, errBadAnswer
		}
		name, value, ok := splitHeader(line)
		if !ok {
			return dst, h, errBadAnswer
		}
		switch len(name) {
		case 10:
			if eqFold(name, "connection") {
				for tok := range bytes.SplitSeq(value, []byte(",")) {
					if eqFold(trimOWS(tok), "close") {
						h.close = true
					}
				}
				continue
			}
			if eqFold(name, "keep-alive") {
				continue
			}
		case 2, 7, 16:
			if eqFold(name, "te") || eqFold(name, "upgrade") || eqFold(name, "proxy-connection") {
				continue
			}
		case 14:
			if eqFold(name, "content-length") {
				n, err := strconv.ParseInt(string(value), 10, 64)
				if err != nil || n < 0 || h.length >= 0 && h.length != n {
					return dst, h, errBadAnswer
				}
				if h.length >= 0 {
					continue // the same again: say it once
				}
				h.length = n
			}
		case 17:
			if eqFold(name, "transfer-encoding") {
				if te != nil {
					return dst, h, errBadAnswer
				}
				te = value
			}
		}
		if len(name) == 10 && eqFold(name, "set-cookie") {
			// As net/http's path does (safeSetCookies): host-only, and
			// never under one of aim's names.
			v, ok := safeSetCookie(string(value))
			if !ok {
				continue
			}
			dst = append(dst, "Set-Cookie: "...)
			dst = append(dst, v...)
			dst = append(dst, "\r\n"...)
			continue
		}
		dst = append(dst, line...)
		dst = append(dst, "\r\n"...)
	}
	if te != nil {
		if h.length >= 0 {
			// Both framings: the kind of answer net/http is lenient with
			// and a proxy must not pass on.
			return dst, h, errBadAnswer
		}
		last := te
		if i := bytes.LastIndexByte(te, ','); i >= 0 {
			last = te[i+1:]
		}
		h.chunked = eqFold(trimOWS(last), "chunked")
		if !h.chunked {
			h.close = true // read to the end of the connection
		}
	}
	return dst, h, nil
}

// readLine reads one CRLF-terminated line without its CRLF. A line longer
// than the reader's buffer or without CR is an error: replicas do not
// send such lines, and the fast path leaves them to net/http.
func readLine(r lineReader) ([]byte, error) {
	line, err := r.ReadSlice('\n')
	if err != nil {
		return nil, err
	}
	if len(line) < 2 || line[len(line)-2] != '\r' {
		return nil, errBadAnswer
	}
	if len(line) > 2 && (line[0] == ' ' || line[0] == '\t') {
		return nil, errBadAnswer // obsolete line folding
	}
	return line[:len(line)-2], nil
}
