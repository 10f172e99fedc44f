// Package stl reads and writes STL triangle meshes (ASCII and binary).
//
// The reader is meant for untrusted uploads: it bounds the triangle count,
// rejects NaN/Inf and absurd coordinates, truncated files, binary headers
// whose triangle count disagrees with the file size, and malformed ASCII,
// and reports what is wrong in the error.
package stl

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
)

// Vec is a point in 3D.
type Vec [3]float64

// Triangle is three vertices; STL facet normals are ignored (they are often
// wrong or zero) and recomputed from the winding when needed.
type Triangle [3]Vec

// Mesh is a triangle soup.
type Mesh struct {
	Triangles []Triangle
}

// Format of a parsed file.
const (
	Binary = "binary"
	ASCII  = "ascii"
)

// Limits bound what Parse accepts.
type Limits struct {
	MaxTriangles int     // default 1,000,000
	MaxCoord     float64 // |coordinate| bound, default 1e9
}

func (l Limits) withDefaults() Limits {
	if l.MaxTriangles <= 0 {
		l.MaxTriangles = 1_000_000
	}
	if l.MaxCoord <= 0 {
		l.MaxCoord = 1e9
	}
	return l
}

// Error is a parse error: the input is not a valid STL file.
type Error struct{ Msg string }

func (e *Error) Error() string { return "invalid STL: " + e.Msg }

func errf(format string, a ...any) error { return &Error{Msg: fmt.Sprintf(format, a...)} }

// IsFormatError reports whether err is a problem with the input file.
func IsFormatError(err error) bool {
	var e *Error
	return errors.As(err, &e)
}

const binaryHeader = 84
const binaryFacet = 50

// Parse detects the format and parses data. A file is binary when its size
// matches the triangle count of its 84-byte header; otherwise it must be
// ASCII ("solid ..."). Binary files whose header also starts with "solid"
// are therefore handled correctly.
func Parse(data []byte, lim Limits) (*Mesh, string, error) {
	lim = lim.withDefaults()
	if len(data) == 0 {
		return nil, "", errf("empty file")
	}
	if len(data) >= binaryHeader {
		n := uint64(binary.LittleEndian.Uint32(data[80:84]))
		if uint64(len(data)) == binaryHeader+binaryFacet*n {
			m, err := parseBinary(data, lim)
			return m, Binary, err
		}
	}
	trimmed := bytes.TrimLeft(data, " \t\r\n")
	if len(trimmed) >= 5 && strings.EqualFold(string(trimmed[:5]), "solid") {
		if !isText(data) {
			// A binary header starting with "solid" whose size is wrong.
			n := uint64(0)
			if len(data) >= binaryHeader {
				n = uint64(binary.LittleEndian.Uint32(data[80:84]))
			}
			return nil, "", errf("binary data that does not match its header: header announces %d triangles (%d bytes) but the file has %d bytes", n, binaryHeader+binaryFacet*n, len(data))
		}
		m, err := parseASCII(data, lim)
		return m, ASCII, err
	}
	if len(data) < binaryHeader {
		return nil, "", errf("file too short (%d bytes) for a binary STL (84-byte header) and not ASCII STL (no leading \"solid\")", len(data))
	}
	n := uint64(binary.LittleEndian.Uint32(data[80:84]))
	return nil, "", errf("not ASCII STL (no leading \"solid\") and not a consistent binary STL: header announces %d triangles (%d bytes) but the file has %d bytes (truncated file or wrong count)", n, binaryHeader+binaryFacet*n, len(data))
}

// isText reports whether data looks like text: no control bytes other than
// whitespace (binary float data nearly always has some).
func isText(data []byte) bool {
	for _, b := range data {
		if b == 0x7f || (b < 0x20 && b != '\n' && b != '\r' && b != '\t' && b != '\f' && b != '\v') {
			return false
		}
	}
	return true
}

func checkVertex(v Vec, lim Limits, tri int) error {
	for _, c := range v {
		if math.IsNaN(c) || math.IsInf(c, 0) {
			return errf("triangle %d has a non-finite coordinate (%v)", tri+1, c)
		}
		if math.Abs(c) > lim.MaxCoord {
			return errf("triangle %d has a coordinate beyond ±%g (%g)", tri+1, lim.MaxCoord, c)
		}
	}
	return nil
}

func parseBinary(data []byte, lim Limits) (*Mesh, error) {
	n := int(binary.LittleEndian.Uint32(data[80:84]))
	if n == 0 {
		return nil, errf("binary STL with zero triangles")
	}
	if n > lim.MaxTriangles {
		return nil, errf("%d triangles, more than the limit of %d", n, lim.MaxTriangles)
	}
	m := &Mesh{Triangles: make([]Triangle, n)}
	off := binaryHeader
	for i := 0; i < n; i++ {
		rec := data[off : off+binaryFacet]
		var t Triangle
		for v := 0; v < 3; v++ {
			for c := 0; c < 3; c++ {
				p := 12 + 12*v + 4*c
				t[v][c] = float64(math.Float32frombits(binary.LittleEndian.Uint32(rec[p : p+4])))
			}
			if err := checkVertex(t[v], lim, i); err != nil {
				return nil, err
			}
		}
		m.Triangles[i] = t
		off += binaryFacet
	}
	return m, nil
}

// asciiScanner yields whitespace-separated tokens and the current line.
type asciiScanner struct {
	s    *bufio.Scanner
	line int
	toks []string
}

func (a *asciiScanner) next() (string, bool) {
	for len(a.toks) == 0 {
		if !a.s.Scan() {
			return "", false
		}
		a.line++
		a.toks = strings.Fields(a.s.Text())
	}
	t := a.toks[0]
	a.toks = a.toks[1:]
	return t, true
}

func (a *asciiScanner) expect(word string) error {
	t, ok := a.next()
	if !ok {
		return errf("line %d: unexpected end of file, expected %q (truncated file?)", a.line, word)
	}
	if !strings.EqualFold(t, word) {
		return errf("line %d: expected %q, found %q", a.line, word, clip(t))
	}
	return nil
}

func (a *asciiScanner) float(what string) (float64, error) {
	t, ok := a.next()
	if !ok {
		return 0, errf("line %d: unexpected end of file in %s (truncated file?)", a.line, what)
	}
	f, err := strconv.ParseFloat(t, 32) // STL stores float32
	if err != nil {
		return 0, errf("line %d: %s: %q is not a number", a.line, what, clip(t))
	}
	return float64(float32(f)), nil
}

func clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}

func parseASCII(data []byte, lim Limits) (*Mesh, error) {
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20) // no line longer than 1 MiB
	a := &asciiScanner{s: sc}
	m := &Mesh{}
	solids := 0
	for {
		t, ok := a.next()
		if !ok {
			break
		}
		if !strings.EqualFold(t, "solid") {
			return nil, errf("line %d: expected \"solid\", found %q", a.line, clip(t))
		}
		solids++
		// The solid's name runs to the end of its line.
		a.toks = nil
		for {
			t, ok := a.next()
			if !ok {
				return nil, errf("line %d: unexpected end of file, missing \"endsolid\" (truncated file?)", a.line)
			}
			if strings.EqualFold(t, "endsolid") {
				a.toks = nil // optional name
				break
			}
			if !strings.EqualFold(t, "facet") {
				return nil, errf("line %d: expected \"facet\" or \"endsolid\", found %q", a.line, clip(t))
			}
			i := len(m.Triangles)
			if i >= lim.MaxTriangles {
				return nil, errf("more than the limit of %d triangles", lim.MaxTriangles)
			}
			if err := a.expect("normal"); err != nil {
				return nil, err
			}
			for c := 0; c < 3; c++ {
				if _, err := a.float("facet normal"); err != nil {
					return nil, err
				}
			}
			if err := a.expect("outer"); err != nil {
				return nil, err
			}
			if err := a.expect("loop"); err != nil {
				return nil, err
			}
			var tri Triangle
			for v := 0; v < 3; v++ {
				if err := a.expect("vertex"); err != nil {
					return nil, err
				}
				for c := 0; c < 3; c++ {
					f, err := a.float("vertex")
					if err != nil {
						return nil, err
					}
					tri[v][c] = f
				}
				if err := checkVertex(tri[v], lim, i); err != nil {
					return nil, err
				}
			}
			if err := a.expect("endloop"); err != nil {
				return nil, err
			}
			if err := a.expect("endfacet"); err != nil {
				return nil, err
			}
			m.Triangles = append(m.Triangles, tri)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, errf("line %d: %v", a.line+1, err)
	}
	if solids == 0 || len(m.Triangles) == 0 {
		return nil, errf("ASCII STL with no facets")
	}
	return m, nil
}

// Normal returns the unit normal of t from its winding (zero if degenerate).
func Normal(t Triangle) Vec {
	u := sub(t[1], t[0])
	v := sub(t[2], t[0])
	n := Vec{u[1]*v[2] - u[2]*v[1], u[2]*v[0] - u[0]*v[2], u[0]*v[1] - u[1]*v[0]}
	l := math.Sqrt(n[0]*n[0] + n[1]*n[1] + n[2]*n[2])
	if l == 0 {
		return Vec{}
	}
	return Vec{n[0] / l, n[1] / l, n[2] / l}
}

func sub(a, b Vec) Vec { return Vec{a[0] - b[0], a[1] - b[1], a[2] - b[2]} }

// WriteBinary writes m as binary STL.
func WriteBinary(w io.Writer, m *Mesh, header string) error {
	bw := bufio.NewWriter(w)
	var h [binaryHeader]byte
	copy(h[:80], header)
	binary.LittleEndian.PutUint32(h[80:], uint32(len(m.Triangles)))
	bw.Write(h[:])
	var rec [binaryFacet]byte
	put := func(off int, v Vec) {
		for c := 0; c < 3; c++ {
			binary.LittleEndian.PutUint32(rec[off+4*c:], math.Float32bits(float32(v[c])))
		}
	}
	for _, t := range m.Triangles {
		put(0, Normal(t))
		for v := 0; v < 3; v++ {
			put(12+12*v, t[v])
		}
		bw.Write(rec[:])
	}
	return bw.Flush()
}

// WriteASCII writes m as ASCII STL with float32 precision, so that a file
// written in both formats parses to identical meshes.
func WriteASCII(w io.Writer, m *Mesh, name string) error {
	bw := bufio.NewWriter(w)
	f := func(x float64) string { return strconv.FormatFloat(float64(float32(x)), 'e', -1, 32) }
	fmt.Fprintf(bw, "solid %s\n", name)
	for _, t := range m.Triangles {
		n := Normal(t)
		fmt.Fprintf(bw, "  facet normal %s %s %s\n    outer loop\n", f(n[0]), f(n[1]), f(n[2]))
		for _, v := range t {
			fmt.Fprintf(bw, "      vertex %s %s %s\n", f(v[0]), f(v[1]), f(v[2]))
		}
		fmt.Fprintf(bw, "    endloop\n  endfacet\n")
	}
	fmt.Fprintf(bw, "endsolid %s\n", name)
	return bw.Flush()
}
