// Package render draws a small isometric, flat-shaded PNG preview of a mesh
// with a z-buffer (no GPU, no dependencies).
package render

import (
	"bytes"
	"image"
	"image/color"
	"image/png"
	"math"

	"github.com/aimhub/aim/examples/part-comparer/engine/internal/stl"
)

// PNG renders m into a size×size PNG with a transparent background.
func PNG(m *stl.Mesh, size int) ([]byte, error) {
	const ss = 2 // supersampling
	n := size * ss
	// Isometric view: turn 45° about z, then tilt by atan(1/sqrt(2)).
	cy, sy := math.Cos(math.Pi/4), math.Sin(math.Pi/4)
	tilt := math.Atan(1 / math.Sqrt2)
	ct, st := math.Cos(tilt), math.Sin(tilt)
	view := func(p stl.Vec) stl.Vec {
		x := cy*p[0] - sy*p[1]
		y := sy*p[0] + cy*p[1]
		z := p[2]
		// screen x = x, screen y = up, depth = towards viewer
		return stl.Vec{x, ct*z - st*y, st*z + ct*y}
	}
	minX, minY, maxX, maxY := math.Inf(1), math.Inf(1), math.Inf(-1), math.Inf(-1)
	vs := make([][3]stl.Vec, len(m.Triangles))
	for i, t := range m.Triangles {
		for k := 0; k < 3; k++ {
			v := view(t[k])
			vs[i][k] = v
			minX, maxX = math.Min(minX, v[0]), math.Max(maxX, v[0])
			minY, maxY = math.Min(minY, v[1]), math.Max(maxY, v[1])
		}
	}
	span := math.Max(maxX-minX, maxY-minY)
	if !(span > 0) {
		span = 1
	}
	margin := 0.06 * float64(n)
	scale := (float64(n) - 2*margin) / span
	ox := margin + (float64(n)-2*margin-(maxX-minX)*scale)/2
	oy := margin + (float64(n)-2*margin-(maxY-minY)*scale)/2
	zbuf := make([]float64, n*n)
	for i := range zbuf {
		zbuf[i] = math.Inf(-1)
	}
	shade := make([]float64, n*n)
	light := unit(stl.Vec{-0.4, 0.8, 0.6})
	for _, t := range vs {
		nrm := stl.Normal(stl.Triangle(t))
		s := 0.3 + 0.7*math.Abs(nrm[0]*light[0]+nrm[1]*light[1]+nrm[2]*light[2])
		var px, py [3]float64
		for k := 0; k < 3; k++ {
			px[k] = ox + (t[k][0]-minX)*scale
			py[k] = float64(n) - (oy + (t[k][1]-minY)*scale)
		}
		den := (py[1]-py[2])*(px[0]-px[2]) + (px[2]-px[1])*(py[0]-py[2])
		if math.Abs(den) < 1e-12 {
			continue
		}
		x0 := max(0, int(math.Floor(min(px[0], px[1], px[2]))))
		x1 := min(n-1, int(math.Ceil(max(px[0], px[1], px[2]))))
		y0 := max(0, int(math.Floor(min(py[0], py[1], py[2]))))
		y1 := min(n-1, int(math.Ceil(max(py[0], py[1], py[2]))))
		for y := y0; y <= y1; y++ {
			fy := float64(y) + 0.5
			for x := x0; x <= x1; x++ {
				fx := float64(x) + 0.5
				a := ((py[1]-py[2])*(fx-px[2]) + (px[2]-px[1])*(fy-py[2])) / den
				b := ((py[2]-py[0])*(fx-px[2]) + (px[0]-px[2])*(fy-py[2])) / den
				c := 1 - a - b
				if a < -1e-9 || b < -1e-9 || c < -1e-9 {
					continue
				}
				z := a*t[0][2] + b*t[1][2] + c*t[2][2]
				if z > zbuf[y*n+x] {
					zbuf[y*n+x] = z
					shade[y*n+x] = s
				}
			}
		}
	}
	img := image.NewNRGBA(image.Rect(0, 0, size, size))
	base := [3]float64{70, 110, 170}
	for y := 0; y < size; y++ {
		for x := 0; x < size; x++ {
			var r, g, b, cov float64
			for dy := 0; dy < ss; dy++ {
				for dx := 0; dx < ss; dx++ {
					i := (y*ss+dy)*n + x*ss + dx
					if math.IsInf(zbuf[i], -1) {
						continue
					}
					cov++
					r += base[0] * shade[i]
					g += base[1] * shade[i]
					b += base[2] * shade[i]
				}
			}
			if cov == 0 {
				continue
			}
			img.SetNRGBA(x, y, color.NRGBA{
				R: uint8(math.Min(255, r/cov+40)), G: uint8(math.Min(255, g/cov+40)), B: uint8(math.Min(255, b/cov+40)),
				A: uint8(255 * cov / (ss * ss)),
			})
		}
	}
	var buf bytes.Buffer
	enc := png.Encoder{CompressionLevel: png.BestCompression}
	if err := enc.Encode(&buf, img); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func unit(v stl.Vec) stl.Vec {
	l := math.Sqrt(v[0]*v[0] + v[1]*v[1] + v[2]*v[2])
	return stl.Vec{v[0] / l, v[1] / l, v[2] / l}
}
