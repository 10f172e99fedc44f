package stl

import (
	"bytes"
	"encoding/binary"
	"math"
	"strings"
	"testing"
)

func sample() *Mesh {
	return &Mesh{Triangles: []Triangle{
		{{0, 0, 0}, {1, 0, 0}, {0, 1, 0}},
		{{0, 0, 0}, {0, 1, 0}, {0, 0, 1}},
		{{0.1, 0.2, 0.3}, {1e-3, 12345.678, -7.25}, {3.14159265, -2.5e-7, 1}},
	}}
}

func binaryOf(t *testing.T, m *Mesh, header string) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := WriteBinary(&buf, m, header); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestASCIIAndBinaryAgree(t *testing.T) {
	m := sample()
	var a bytes.Buffer
	WriteASCII(&a, m, "part")
	mb, fb, err := Parse(binaryOf(t, m, "solid but actually binary"), Limits{})
	if err != nil || fb != Binary {
		t.Fatalf("binary: %v %q", err, fb)
	}
	ma, fa, err := Parse(a.Bytes(), Limits{})
	if err != nil || fa != ASCII {
		t.Fatalf("ascii: %v %q", err, fa)
	}
	if len(ma.Triangles) != len(m.Triangles) || len(mb.Triangles) != len(m.Triangles) {
		t.Fatalf("triangle counts %d %d", len(ma.Triangles), len(mb.Triangles))
	}
	for i := range ma.Triangles {
		if ma.Triangles[i] != mb.Triangles[i] {
			t.Errorf("triangle %d: ascii %v binary %v", i, ma.Triangles[i], mb.Triangles[i])
		}
	}
}

func TestASCIIVariants(t *testing.T) {
	// Multi-word name, upper case keywords, CRLF, several solids.
	src := "SOLID my part v2\r\n facet normal 0 0 0\r\n outer loop\r\n vertex 0 0 0\r\n vertex 1 0 0\r\n vertex 0 1 0\r\n endloop\r\n endfacet\r\nENDSOLID my part v2\r\n" +
		"solid b\nfacet normal 0 0 1 outer loop vertex 0 0 1 vertex 1 0 1 vertex 0 1 1 endloop endfacet\nendsolid\n"
	m, f, err := Parse([]byte(src), Limits{})
	if err != nil || f != ASCII || len(m.Triangles) != 2 {
		t.Fatalf("got %v %q %v", m, f, err)
	}
}

func TestRejects(t *testing.T) {
	good := binaryOf(t, sample(), "")
	withCount := func(n uint32) []byte {
		b := bytes.Clone(good)
		binary.LittleEndian.PutUint32(b[80:], n)
		return b
	}
	nan := bytes.Clone(good)
	binary.LittleEndian.PutUint32(nan[84+12+4:], math.Float32bits(float32(math.NaN())))
	inf := bytes.Clone(good)
	binary.LittleEndian.PutUint32(inf[84+50+24:], math.Float32bits(float32(math.Inf(1))))
	var asc bytes.Buffer
	WriteASCII(&asc, sample(), "x")
	a := asc.String()
	cases := map[string]struct {
		data []byte
		want string
	}{
		"empty":            {nil, "empty"},
		"text":             {[]byte("hello, world"), "too short"},
		"not stl":          {bytes.Repeat([]byte{0x89, 'P', 'N', 'G'}, 100), "not ASCII STL"},
		"truncated bin":    {good[:len(good)-7], "truncated"},
		"lying count":      {withCount(1000), "announces 1000 triangles"},
		"zero count":       {withCount(0)[:84], "zero triangles"},
		"extra bytes":      {append(bytes.Clone(good), 0, 0, 0), "announces 3 triangles"},
		"nan":              {nan, "non-finite"},
		"inf":              {inf, "non-finite"},
		"ascii nan":        {[]byte(strings.Replace(a, "vertex 0e+00", "vertex nan", 1)), "non-finite"},
		"ascii inf":        {[]byte(strings.Replace(a, "vertex 0e+00", "vertex -Inf", 1)), "non-finite"},
		"ascii huge":       {[]byte(strings.Replace(a, "vertex 0e+00", "vertex 1e30", 1)), "beyond"},
		"ascii truncated":  {[]byte(a[:strings.LastIndex(a[:len(a)/2], "\n")+1]), "end of file"},
		"ascii garbage":    {[]byte(strings.Replace(a, "endloop", "endlop", 1)), `expected "endloop"`},
		"ascii bad num":    {[]byte(strings.Replace(a, "vertex 0e+00", "vertex 0x1p-2z", 1)), "not a number"},
		"ascii no facets":  {[]byte("solid x\nendsolid x\n"), "no facets"},
		"ascii 2 coords":   {[]byte("solid x\nfacet normal 0 0 1\nouter loop\nvertex 0 0\nvertex 1 0 0\nvertex 0 1 0\nendloop\nendfacet\nendsolid\n"), "not a number"},
		"binary solid hdr": {append([]byte("solid x"), make([]byte, 100)...), "binary data"},
	}
	for name, c := range cases {
		_, _, err := Parse(c.data, Limits{})
		if err == nil {
			t.Errorf("%s: accepted", name)
			continue
		}
		if !IsFormatError(err) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %q, want it to mention %q", name, err, c.want)
		}
	}
}

func TestTriangleLimit(t *testing.T) {
	m := &Mesh{}
	for i := 0; i < 11; i++ {
		m.Triangles = append(m.Triangles, sample().Triangles[0])
	}
	var a bytes.Buffer
	WriteASCII(&a, m, "x")
	for _, data := range [][]byte{binaryOf(t, m, ""), a.Bytes()} {
		if _, _, err := Parse(data, Limits{MaxTriangles: 10}); err == nil || !strings.Contains(err.Error(), "limit of 10") {
			t.Errorf("want limit error, got %v", err)
		}
		if _, _, err := Parse(data, Limits{MaxTriangles: 11}); err != nil {
			t.Errorf("11 triangles within limit: %v", err)
		}
	}
}
