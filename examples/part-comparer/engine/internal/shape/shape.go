// Package shape computes shape descriptors of triangle meshes that do not
// change when a part is moved, rotated or uniformly scaled, and compares them.
//
// The descriptor has two parts:
//
//   - D2 shape distribution (Osada et al., 2002): points are sampled on the
//     surface, area-weighted, with a fixed seed; the distances between all
//     pairs of points are divided by their mean (scale invariance) and
//     histogrammed. Distances do not depend on position or orientation.
//   - Principal extent ratios: the square roots of the eigenvalues of the
//     surface's covariance matrix, sorted, as ratios to the largest
//     (slender shaft ~ (1, 0.1, 0.1), plate ~ (1, 0.6, 0.05), disc ~ (1, 1, 0.1)).
//
// The distance between two descriptors is a weighted sum of half the L1
// distance between the histograms and the mean absolute difference of the
// ratios; both lie in [0, 1], so the similarity score 1 - distance does too.
// Mirror images get the same descriptor (D2 cannot tell them apart).
package shape

import (
	"errors"
	"math"
	"math/rand/v2"
	"sort"

	"github.com/aimhub/aim/examples/part-comparer/engine/internal/stl"
)

const (
	// Samples is the number of surface points; all Samples*(Samples-1)/2
	// pairs are used.
	Samples = 4096
	// Bins of the D2 histogram, over [0, MaxRatio] times the mean distance.
	Bins     = 64
	MaxRatio = 3.0
	// Seed of the sampler: the same mesh always gives the same descriptor.
	Seed = 0x5eed

	weightD2     = 0.7
	weightExtent = 0.3
)

// Descriptor of one shape.
type Descriptor struct {
	D2     [Bins]float64 `json:"d2"`     // sums to 1
	Extent [2]float64    `json:"extent"` // middle/largest, smallest/largest principal extents
	Area   float64       `json:"-"`
}

// ErrDegenerate is returned for meshes without surface area.
var ErrDegenerate = errors.New("the mesh has no surface area (all triangles are degenerate)")

type vec = stl.Vec

func area(t stl.Triangle) float64 {
	u := vec{t[1][0] - t[0][0], t[1][1] - t[0][1], t[1][2] - t[0][2]}
	v := vec{t[2][0] - t[0][0], t[2][1] - t[0][1], t[2][2] - t[0][2]}
	x := u[1]*v[2] - u[2]*v[1]
	y := u[2]*v[0] - u[0]*v[2]
	z := u[0]*v[1] - u[1]*v[0]
	return 0.5 * math.Sqrt(x*x+y*y+z*z)
}

// Sample returns n points on the surface of m. Each triangle gets a number
// of points proportional to its area (largest-remainder rounding, which
// lowers the variance compared to independent draws), spread evenly inside
// it from a seeded random start.
func Sample(m *stl.Mesh, n int) ([]vec, float64, error) {
	areas := make([]float64, len(m.Triangles))
	total := 0.0
	for i, t := range m.Triangles {
		areas[i] = area(t)
		total += areas[i]
	}
	if !(total > 0) || math.IsInf(total, 0) {
		return nil, 0, ErrDegenerate
	}
	counts := make([]int, len(areas))
	type rem struct {
		i int
		r float64
	}
	rems := make([]rem, 0, len(areas))
	used := 0
	for i, a := range areas {
		x := a / total * float64(n)
		counts[i] = int(x)
		used += counts[i]
		if a > 0 {
			rems = append(rems, rem{i, x - float64(counts[i])})
		}
	}
	sort.SliceStable(rems, func(a, b int) bool { return rems[a].r > rems[b].r })
	for j := 0; used < n && j < len(rems); j++ {
		counts[rems[j].i]++
		used++
	}
	// Within a triangle, points follow the R2 low-discrepancy sequence from
	// a random (seeded) start, mapped to the triangle by an area-preserving
	// map: as random as needed, but evenly spread, so that the descriptor
	// hardly depends on how the surface is split into triangles.
	const g = 1.32471795724474602596 // plastic number
	a1, a2 := 1/g, 1/(g*g)
	rng := rand.New(rand.NewPCG(Seed, Seed))
	pts := make([]vec, 0, n)
	for i, t := range m.Triangles {
		if counts[i] == 0 {
			continue
		}
		s1, s2 := rng.Float64(), rng.Float64()
		for k := 0; k < counts[i]; k++ {
			u := math.Mod(s1+float64(k)*a1, 1)
			v := math.Mod(s2+float64(k)*a2, 1)
			r1 := math.Sqrt(u)
			a, b, c := 1-r1, r1*(1-v), r1*v
			pts = append(pts, vec{
				a*t[0][0] + b*t[1][0] + c*t[2][0],
				a*t[0][1] + b*t[1][1] + c*t[2][1],
				a*t[0][2] + b*t[1][2] + c*t[2][2],
			})
		}
	}
	return pts, total, nil
}

// Describe computes the descriptor of m.
func Describe(m *stl.Mesh) (*Descriptor, error) {
	pts, total, err := Sample(m, Samples)
	if err != nil {
		return nil, err
	}
	d := &Descriptor{Area: total}

	// D2 over all pairs, in one pass: distances go into a fine histogram
	// over [0, 2R] (R: largest distance from the centroid, which bounds
	// every pair distance) while their sum is accumulated; the fine bins are
	// then regrouped into Bins bins over [0, MaxRatio*mean]. The regrouping
	// error is under half a fine bin (1/8192 of 2R).
	n := len(pts)
	var c vec
	for _, p := range pts {
		c[0] += p[0]
		c[1] += p[1]
		c[2] += p[2]
	}
	for k := range c {
		c[k] /= float64(n)
	}
	r2 := 0.0
	for _, p := range pts {
		dx, dy, dz := p[0]-c[0], p[1]-c[1], p[2]-c[2]
		r2 = math.Max(r2, dx*dx+dy*dy+dz*dz)
	}
	const fine = 8192
	var hist [fine + 1]float64
	fscale := fine / (2 * math.Sqrt(r2))
	if !(fscale > 0) || math.IsInf(fscale, 0) {
		return nil, ErrDegenerate
	}
	sum := 0.0
	for i := 0; i < n; i++ {
		px, py, pz := pts[i][0], pts[i][1], pts[i][2]
		for _, q := range pts[i+1:] {
			dx, dy, dz := px-q[0], py-q[1], pz-q[2]
			l := math.Sqrt(dx*dx + dy*dy + dz*dz)
			sum += l
			hist[min(int(l*fscale), fine)]++
		}
	}
	npairs := float64(n * (n - 1) / 2)
	mean := sum / npairs
	if !(mean > 0) {
		return nil, ErrDegenerate
	}
	scale := float64(Bins) / (MaxRatio * mean)
	for j, cnt := range hist {
		if cnt == 0 {
			continue
		}
		b := min(int((float64(j)+0.5)/fscale*scale), Bins-1)
		d.D2[b] += cnt / npairs
	}

	// Principal extents from the covariance of the sample points.
	var cov [3][3]float64
	for _, p := range pts {
		x := vec{p[0] - c[0], p[1] - c[1], p[2] - c[2]}
		for a := 0; a < 3; a++ {
			for b := 0; b < 3; b++ {
				cov[a][b] += x[a] * x[b]
			}
		}
	}
	ev := eigenvalues(cov)
	if ev[0] > 0 {
		d.Extent = [2]float64{math.Sqrt(math.Max(ev[1], 0) / ev[0]), math.Sqrt(math.Max(ev[2], 0) / ev[0])}
	}
	return d, nil
}

// eigenvalues of a symmetric 3x3 matrix, descending (cyclic Jacobi).
func eigenvalues(a [3][3]float64) [3]float64 {
	for sweep := 0; sweep < 50; sweep++ {
		off := a[0][1]*a[0][1] + a[0][2]*a[0][2] + a[1][2]*a[1][2]
		diag := a[0][0]*a[0][0] + a[1][1]*a[1][1] + a[2][2]*a[2][2]
		if off <= 1e-24*diag {
			break
		}
		for p := 0; p < 2; p++ {
			for q := p + 1; q < 3; q++ {
				if a[p][q] == 0 {
					continue
				}
				theta := (a[q][q] - a[p][p]) / (2 * a[p][q])
				t := math.Copysign(1, theta) / (math.Abs(theta) + math.Sqrt(theta*theta+1))
				cs := 1 / math.Sqrt(t*t+1)
				sn := t * cs
				for k := 0; k < 3; k++ { // A = A J
					akp, akq := a[k][p], a[k][q]
					a[k][p] = cs*akp - sn*akq
					a[k][q] = sn*akp + cs*akq
				}
				for k := 0; k < 3; k++ { // A = J^T A
					apk, aqk := a[p][k], a[q][k]
					a[p][k] = cs*apk - sn*aqk
					a[q][k] = sn*apk + cs*aqk
				}
			}
		}
	}
	ev := [3]float64{a[0][0], a[1][1], a[2][2]}
	sort.Sort(sort.Reverse(sort.Float64Slice(ev[:])))
	return ev
}

// Distance between two descriptors, in [0, 1].
func Distance(a, b *Descriptor) float64 {
	l1 := 0.0
	for i := range a.D2 {
		l1 += math.Abs(a.D2[i] - b.D2[i])
	}
	ext := (math.Abs(a.Extent[0]-b.Extent[0]) + math.Abs(a.Extent[1]-b.Extent[1])) / 2
	d := weightD2*l1/2 + weightExtent*ext
	return math.Min(math.Max(d, 0), 1)
}

// Similarity is 1 - Distance, in [0, 1]; 1 means the same descriptor.
func Similarity(a, b *Descriptor) float64 { return 1 - Distance(a, b) }
