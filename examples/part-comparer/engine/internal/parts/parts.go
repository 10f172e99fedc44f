// Package parts generates the demo collection procedurally: plates,
// brackets, flanges, shafts and gears in several variants (dimensions, hole
// counts, teeth counts), as triangle meshes in millimetres.
//
// Solids are built by extruding 2D cells. A cell is a polygon that is
// star-shaped around a centre, optionally with a round hole at that centre;
// its faces are triangulated by casting rays from the centre. Parts made of
// several solids (a bracket's two legs, a shaft's steps) are plain unions of
// closed meshes: the shared faces stay inside, which is fine for surface
// sampling and previews but means the meshes are not manifold.
package parts

import (
	"fmt"
	"math"
	"sort"

	"github.com/aimhub/aim/examples/part-comparer/engine/internal/stl"
)

// Part of the collection.
type Part struct {
	ID     string         `json:"id"`
	Name   string         `json:"name"`
	Family string         `json:"family"`
	Params map[string]any `json:"params"`
	Mesh   *stl.Mesh      `json:"-"`
}

type v2 [2]float64

// cell is a polygon (counter-clockwise, star-shaped around c) with an
// optional hole of radius r centred on c.
type cell struct {
	poly []v2
	c    v2
	r    float64
}

const holeSegments = 24

type builder struct{ tris []stl.Triangle }

func (b *builder) tri(p, q, r stl.Vec) { b.tris = append(b.tris, stl.Triangle{p, q, r}) }
func (b *builder) quad(p, q, r, s stl.Vec) {
	b.tri(p, q, r)
	b.tri(p, r, s)
}

// ray returns where the ray from c at angle a leaves poly.
func ray(poly []v2, c v2, a float64) v2 {
	d := v2{math.Cos(a), math.Sin(a)}
	best := math.Inf(1)
	for i := range poly {
		p, q := poly[i], poly[(i+1)%len(poly)]
		e := v2{q[0] - p[0], q[1] - p[1]}
		den := d[0]*e[1] - d[1]*e[0]
		if math.Abs(den) < 1e-15 {
			continue
		}
		w := v2{p[0] - c[0], p[1] - c[1]}
		t := (w[0]*e[1] - w[1]*e[0]) / den
		s := (w[0]*d[1] - w[1]*d[0]) / den
		if t > 1e-12 && s >= -1e-9 && s <= 1+1e-9 && t < best {
			best = t
		}
	}
	if math.IsInf(best, 1) {
		panic("parts: cell is not star-shaped around its centre")
	}
	return v2{c[0] + best*d[0], c[1] + best*d[1]}
}

type ang struct {
	a     float64
	exact *v2 // polygon vertex at this angle
}

// prism extrudes cells from z0 to z1 and maps each point through xf.
func (b *builder) prism(cells []cell, z0, z1 float64, xf func(x, y, z float64) stl.Vec) {
	key := func(p v2) [2]int64 { return [2]int64{int64(math.Round(p[0] * 1e6)), int64(math.Round(p[1] * 1e6))} }
	edges := map[[2][2]int64]int{}
	ekey := func(p, q v2) [2][2]int64 {
		a, b := key(p), key(q)
		if a[0] > b[0] || (a[0] == b[0] && a[1] > b[1]) {
			a, b = b, a
		}
		return [2][2]int64{a, b}
	}
	for _, c := range cells {
		for i := range c.poly {
			edges[ekey(c.poly[i], c.poly[(i+1)%len(c.poly)])]++
		}
	}
	at := func(p v2, z float64) stl.Vec { return xf(p[0], p[1], z) }
	for _, c := range cells {
		var angs []ang
		for i := range c.poly {
			p := c.poly[i]
			angs = append(angs, ang{a: norm(math.Atan2(p[1]-c.c[1], p[0]-c.c[0])), exact: &c.poly[i]})
		}
		if c.r > 0 {
			for k := 0; k < holeSegments; k++ {
				angs = append(angs, ang{a: 2 * math.Pi * float64(k) / holeSegments})
			}
		}
		sort.Slice(angs, func(i, j int) bool { return angs[i].a < angs[j].a })
		// Outer and inner points per angle.
		var outer, inner []v2
		for i, a := range angs {
			if i > 0 && a.a-angs[i-1].a < 1e-12 {
				if a.exact != nil {
					outer[len(outer)-1] = *a.exact
				}
				continue
			}
			if a.exact != nil {
				outer = append(outer, *a.exact)
			} else {
				outer = append(outer, ray(c.poly, c.c, a.a))
			}
			inner = append(inner, v2{c.c[0] + c.r*math.Cos(a.a), c.c[1] + c.r*math.Sin(a.a)})
		}
		n := len(outer)
		for i := 0; i < n; i++ {
			j := (i + 1) % n
			if c.r > 0 {
				b.quad(at(inner[i], z1), at(outer[i], z1), at(outer[j], z1), at(inner[j], z1))
				b.quad(at(inner[j], z0), at(outer[j], z0), at(outer[i], z0), at(inner[i], z0))
				b.quad(at(inner[i], z0), at(inner[i], z1), at(inner[j], z1), at(inner[j], z0))
			} else {
				b.tri(at(c.c, z1), at(outer[i], z1), at(outer[j], z1))
				b.tri(at(c.c, z0), at(outer[j], z0), at(outer[i], z0))
			}
		}
		for i := range c.poly {
			p, q := c.poly[i], c.poly[(i+1)%len(c.poly)]
			if edges[ekey(p, q)] == 1 {
				b.quad(at(p, z0), at(q, z0), at(q, z1), at(p, z1))
			}
		}
	}
}

func norm(a float64) float64 {
	for a < 0 {
		a += 2 * math.Pi
	}
	for a >= 2*math.Pi {
		a -= 2 * math.Pi
	}
	return a
}

func ident(x, y, z float64) stl.Vec { return stl.Vec{x, y, z} }

// gridCells splits a w×d rectangle into nx×ny cells; holes[i] is the hole
// radius of cell i (row-major from the origin corner).
func gridCells(w, d float64, nx, ny int, hole func(i, j int) float64) []cell {
	var cells []cell
	cw, ch := w/float64(nx), d/float64(ny)
	for j := 0; j < ny; j++ {
		for i := 0; i < nx; i++ {
			x0, y0 := float64(i)*cw, float64(j)*ch
			cells = append(cells, cell{
				poly: []v2{{x0, y0}, {x0 + cw, y0}, {x0 + cw, y0 + ch}, {x0, y0 + ch}},
				c:    v2{x0 + cw/2, y0 + ch/2},
				r:    hole(i, j),
			})
		}
	}
	return cells
}

// ringCells splits an annulus (ri may be 0 for a disc) into n sectors with an
// optional hole at the middle of each sector.
func ringCells(ri, ro float64, n int, hole func(k int) float64) []cell {
	var cells []cell
	const arcSeg = 4
	for k := 0; k < n; k++ {
		t0 := 2 * math.Pi * float64(k) / float64(n)
		t1 := 2 * math.Pi * float64(k+1) / float64(n)
		var poly []v2
		for s := 0; s <= arcSeg; s++ {
			t := t0 + (t1-t0)*float64(s)/arcSeg
			poly = append(poly, v2{ro * math.Cos(t), ro * math.Sin(t)})
		}
		if ri > 0 {
			for s := arcSeg; s >= 0; s-- {
				t := t0 + (t1-t0)*float64(s)/arcSeg
				poly = append(poly, v2{ri * math.Cos(t), ri * math.Sin(t)})
			}
		} else {
			poly = append(poly, v2{0, 0})
		}
		tm, rm := (t0+t1)/2, (ri+ro)/2
		if ri == 0 {
			rm = ro * 0.6
		}
		cells = append(cells, cell{poly: poly, c: v2{rm * math.Cos(tm), rm * math.Sin(tm)}, r: hole(k)})
	}
	return cells
}

func noHole(int) float64 { return 0 }

// Plate: w×d×t with holes of radius hr in the listed cells of an nx×ny grid.
func Plate(w, d, t float64, nx, ny int, holes [][2]int, hr float64) *stl.Mesh {
	set := map[[2]int]bool{}
	for _, h := range holes {
		set[h] = true
	}
	var b builder
	b.prism(gridCells(w, d, nx, ny, func(i, j int) float64 {
		if set[[2]int{i, j}] {
			return hr
		}
		return 0
	}), 0, t, ident)
	return &stl.Mesh{Triangles: b.tris}
}

// Bracket: an L of two w-wide legs of thickness t (base depth d, upright
// height h above the base), each with n holes of radius hr along its middle.
func Bracket(w, d, h, t float64, n int, hr float64) *stl.Mesh {
	var b builder
	nx := max(n, 1)
	holes := func(i, j int) float64 {
		if n > 0 {
			return hr
		}
		return 0
	}
	b.prism(gridCells(w, d, nx, 1, holes), 0, t, ident)
	// The upright: cells in (x, height) extruded over the thickness, stood up.
	up := gridCells(w, h, nx, 1, holes)
	b.prism(up, 0, t, func(x, y, z float64) stl.Vec { return stl.Vec{x, z, t + y} })
	return &stl.Mesh{Triangles: b.tris}
}

// Flange: a disc of radius ro and thickness t with a bore ri, n bolt holes of
// radius hr on the middle circle, and optionally a hub (radius hubR, height
// hubH above the disc).
func Flange(ro, ri, t float64, n int, hr, hubR, hubH float64) *stl.Mesh {
	k := (12 + n - 1) / n // sectors per bolt, so that sectors stay narrow
	var b builder
	b.prism(ringCells(ri, ro, n*k, func(s int) float64 {
		if s%k == 0 {
			return hr
		}
		return 0
	}), 0, t, ident)
	if hubH > 0 {
		b.prism(ringCells(ri, hubR, 16, noHole), t, t+hubH, ident)
	}
	return &stl.Mesh{Triangles: b.tris}
}

// Shaft: coaxial cylinders (radius, length) stacked along z.
func Shaft(steps [][2]float64) *stl.Mesh {
	var b builder
	z := 0.0
	for _, s := range steps {
		b.prism(ringCells(0, s[0], 12, noHole), z, z+s[1], ident)
		z += s[1]
	}
	return &stl.Mesh{Triangles: b.tris}
}

// Gear: a spur gear with z trapezoidal teeth, tip radius ro, tooth depth
// depth, face width t and a bore of radius bore.
func Gear(z int, ro, depth, t, bore float64) *stl.Mesh {
	rr := ro - depth
	p := 2 * math.Pi / float64(z)
	var poly []v2
	pt := func(r, a float64) v2 { return v2{r * math.Cos(a), r * math.Sin(a)} }
	for i := 0; i < z; i++ {
		a := p * float64(i)
		poly = append(poly, pt(rr, a), pt(ro, a+0.3*p), pt(ro, a+0.5*p), pt(rr, a+0.8*p), pt(rr, a+0.9*p))
	}
	var b builder
	b.prism([]cell{{poly: poly, c: v2{0, 0}, r: bore}}, 0, t, ident)
	return &stl.Mesh{Triangles: b.tris}
}

func f(x float64) string { return fmt.Sprintf("%g", x) }

// Collection returns the demo parts. IDs are stable.
func Collection() []Part {
	var ps []Part
	add := func(id, name, family string, params map[string]any, m *stl.Mesh) {
		// STL stores float32: round now, so that the in-memory collection is
		// exactly what an STL file of it contains.
		for i := range m.Triangles {
			for v := range m.Triangles[i] {
				for c := range m.Triangles[i][v] {
					m.Triangles[i][v][c] = float64(float32(m.Triangles[i][v][c]))
				}
			}
		}
		ps = append(ps, Part{ID: id, Name: name, Family: family, Params: params, Mesh: m})
	}
	// Plates.
	corners := func(nx, ny int) [][2]int { return [][2]int{{0, 0}, {nx - 1, 0}, {0, ny - 1}, {nx - 1, ny - 1}} }
	type plate struct {
		w, d, t float64
		nx, ny  int
		holes   [][2]int
	}
	for _, p := range []plate{
		{100, 60, 5, 5, 3, nil},
		{100, 60, 5, 5, 3, corners(5, 3)},
		{100, 60, 5, 5, 3, append(corners(5, 3), [2]int{2, 0}, [2]int{2, 2})},
		{160, 40, 6, 8, 2, [][2]int{{0, 0}, {7, 1}}},
		{160, 40, 6, 8, 2, corners(8, 2)},
		{80, 80, 10, 4, 4, corners(4, 4)},
		{100, 100, 4, 5, 5, [][2]int{{2, 2}}},
		{100, 100, 4, 5, 5, append(corners(5, 5), [2]int{2, 2})},
	} {
		n := len(p.holes)
		add(fmt.Sprintf("plate-%sx%sx%s-h%d", f(p.w), f(p.d), f(p.t), n),
			fmt.Sprintf("Plate %s×%s×%s mm, %d holes", f(p.w), f(p.d), f(p.t), n), "plate",
			map[string]any{"width": p.w, "depth": p.d, "thickness": p.t, "holes": n},
			Plate(p.w, p.d, p.t, p.nx, p.ny, p.holes, 0.3*min(p.w/float64(p.nx), p.d/float64(p.ny))))
	}
	// Brackets.
	for _, p := range []struct {
		w, d, h, t float64
		n          int
	}{
		{40, 40, 40, 4, 1}, {40, 40, 40, 4, 0}, {60, 30, 60, 5, 2},
		{100, 40, 40, 5, 3}, {100, 40, 40, 5, 0}, {30, 30, 90, 3, 1}, {120, 60, 30, 6, 4},
	} {
		add(fmt.Sprintf("bracket-%sx%sx%sx%s-h%d", f(p.w), f(p.d), f(p.h), f(p.t), 2*p.n),
			fmt.Sprintf("L-bracket %s mm wide, legs %s/%s mm, %s mm thick, %d holes", f(p.w), f(p.d), f(p.h), f(p.t), 2*p.n), "bracket",
			map[string]any{"width": p.w, "base": p.d, "height": p.h, "thickness": p.t, "holes": 2 * p.n},
			Bracket(p.w, p.d, p.h, p.t, p.n, 0.25*min(p.w/float64(max(p.n, 1)), p.d, p.h)))
	}
	// Flanges.
	for _, p := range []struct {
		ro, ri, t float64
		n         int
		hub       bool
	}{
		{50, 15, 8, 4, false}, {50, 15, 8, 6, false}, {50, 15, 8, 8, false},
		{80, 40, 10, 8, false}, {80, 40, 10, 12, false},
		{50, 15, 8, 4, true}, {80, 40, 10, 8, true},
	} {
		hubR, hubH, hub := 0.0, 0.0, ""
		if p.hub {
			hubR, hubH, hub = p.ri+0.4*(p.ro-p.ri), 2*p.t, " with hub"
		}
		hr := math.Min(0.18*(p.ro-p.ri), 0.3*math.Pi*(p.ro+p.ri)/2/float64(p.n))
		id := fmt.Sprintf("flange-d%s-bore%s-b%d", f(2*p.ro), f(2*p.ri), p.n)
		if p.hub {
			id += "-hub"
		}
		add(id, fmt.Sprintf("Flange Ø%s mm, bore Ø%s mm, %d bolt holes%s", f(2*p.ro), f(2*p.ri), p.n, hub), "flange",
			map[string]any{"diameter": 2 * p.ro, "bore": 2 * p.ri, "thickness": p.t, "bolts": p.n, "hub": p.hub},
			Flange(p.ro, p.ri, p.t, p.n, hr, hubR, hubH))
	}
	// Shafts.
	for _, s := range []struct {
		id    string
		steps [][2]float64
	}{
		{"shaft-plain-d10x200", [][2]float64{{5, 200}}},
		{"shaft-plain-d30x60", [][2]float64{{15, 60}}},
		{"shaft-2step-d20x100", [][2]float64{{10, 60}, {7, 40}}},
		{"shaft-3step-d24x150", [][2]float64{{8, 40}, {12, 70}, {8, 40}}},
		{"shaft-4step-d30x160", [][2]float64{{10, 30}, {15, 60}, {12, 40}, {8, 30}}},
		{"shaft-2step-d40x50", [][2]float64{{20, 30}, {12, 20}}},
	} {
		total, dmax := 0.0, 0.0
		for _, st := range s.steps {
			total += st[1]
			dmax = math.Max(dmax, 2*st[0])
		}
		add(s.id, fmt.Sprintf("Shaft, %d step(s), Ø%s × %s mm", len(s.steps), f(dmax), f(total)), "shaft",
			map[string]any{"steps": len(s.steps), "diameter": dmax, "length": total}, Shaft(s.steps))
	}
	// Gears.
	for _, g := range []struct {
		z                  int
		ro, depth, t, bore float64
	}{
		{12, 30, 5, 10, 6}, {18, 30, 3.5, 10, 6}, {24, 30, 2.5, 10, 6}, {36, 30, 1.8, 10, 6},
		{18, 60, 7, 8, 20}, {36, 60, 3.5, 8, 20}, {24, 20, 2, 20, 5},
	} {
		add(fmt.Sprintf("gear-z%d-d%s-w%s", g.z, f(2*g.ro), f(g.t)),
			fmt.Sprintf("Spur gear, %d teeth, Ø%s mm, %s mm wide", g.z, f(2*g.ro), f(g.t)), "gear",
			map[string]any{"teeth": g.z, "diameter": 2 * g.ro, "width": g.t, "bore": 2 * g.bore},
			Gear(g.z, g.ro, g.depth, g.t, g.bore))
	}
	return ps
}
