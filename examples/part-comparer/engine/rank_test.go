package main

import (
	"bytes"
	"math"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/aimhub/aim/examples/part-comparer/engine/internal/parts"
	"github.com/aimhub/aim/examples/part-comparer/engine/internal/shape"
	"github.com/aimhub/aim/examples/part-comparer/engine/internal/stl"
)

// transformed returns a copy of m rotated by a random rotation, scaled by s,
// translated, with its triangles shuffled and each triangle's vertices
// cyclically shifted, so that sampling sees a different mesh order.
func transformed(m *stl.Mesh, rng *rand.Rand, s float64) *stl.Mesh {
	// Random rotation from a random unit quaternion.
	q := [4]float64{rng.NormFloat64(), rng.NormFloat64(), rng.NormFloat64(), rng.NormFloat64()}
	l := math.Sqrt(q[0]*q[0] + q[1]*q[1] + q[2]*q[2] + q[3]*q[3])
	w, x, y, z := q[0]/l, q[1]/l, q[2]/l, q[3]/l
	r := [3][3]float64{
		{1 - 2*(y*y+z*z), 2 * (x*y - z*w), 2 * (x*z + y*w)},
		{2 * (x*y + z*w), 1 - 2*(x*x+z*z), 2 * (y*z - x*w)},
		{2 * (x*z - y*w), 2 * (y*z + x*w), 1 - 2*(x*x+y*y)},
	}
	tr := stl.Vec{rng.Float64()*1000 - 500, rng.Float64()*1000 - 500, rng.Float64()*1000 - 500}
	out := &stl.Mesh{Triangles: make([]stl.Triangle, len(m.Triangles))}
	for i, t := range m.Triangles {
		var u stl.Triangle
		shift := rng.IntN(3)
		for k := 0; k < 3; k++ {
			v := t[(k+shift)%3]
			for a := 0; a < 3; a++ {
				u[k][a] = s*(r[a][0]*v[0]+r[a][1]*v[1]+r[a][2]*v[2]) + tr[a]
			}
		}
		out.Triangles[i] = u
	}
	rng.Shuffle(len(out.Triangles), func(i, j int) { out.Triangles[i], out.Triangles[j] = out.Triangles[j], out.Triangles[i] })
	return out
}

var (
	collOnce sync.Once
	coll     *collection
	collErr  error
)

// testCollection is the generated demo collection, loaded once per run.
func testCollection(t testing.TB) *collection {
	t.Helper()
	collOnce.Do(func() { coll, collErr = loadCollection("") })
	if collErr != nil {
		t.Fatal(collErr)
	}
	return coll
}

func TestTransformedCopyRanksOriginalFirst(t *testing.T) {
	c := testCollection(t)
	rng := rand.New(rand.NewPCG(1, 2))
	for _, p := range parts.Collection() {
		m := transformed(p.Mesh, rng, 0.1+rng.Float64()*20)
		// Through the binary format, as an upload would be.
		var buf bytes.Buffer
		stl.WriteBinary(&buf, m, "")
		m2, _, err := stl.Parse(buf.Bytes(), stl.Limits{})
		if err != nil {
			t.Fatal(err)
		}
		d, err := shape.Describe(m2)
		if err != nil {
			t.Fatal(err)
		}
		rs := c.Rank(d, 3)
		if rs[0].ID != p.ID {
			t.Errorf("%s: ranked %v first", p.ID, rs)
		} else {
			t.Logf("%-32s self %.4f  next %s %.4f", p.ID, rs[0].Score, rs[1].ID, rs[1].Score)
		}
	}
}
