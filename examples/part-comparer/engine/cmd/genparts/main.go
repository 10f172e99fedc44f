// Command genparts writes the demo collection as binary STL files plus a
// parts.json with names and parameters (run in the engine's Docker build).
//
//	go run ./cmd/genparts -out /parts
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"log"
	"os"
	"path/filepath"

	"github.com/aimhub/aim/examples/part-comparer/engine/internal/parts"
	"github.com/aimhub/aim/examples/part-comparer/engine/internal/stl"
)

func main() {
	out := flag.String("out", "parts", "output directory")
	flag.Parse()
	if err := os.MkdirAll(*out, 0o755); err != nil {
		log.Fatal(err)
	}
	ps := parts.Collection()
	for _, p := range ps {
		var buf bytes.Buffer
		if err := stl.WriteBinary(&buf, p.Mesh, "aim part-comparer "+p.ID); err != nil {
			log.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(*out, p.ID+".stl"), buf.Bytes(), 0o644); err != nil {
			log.Fatal(err)
		}
	}
	b, err := json.MarshalIndent(ps, "", "  ")
	if err != nil {
		log.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(*out, "parts.json"), b, 0o644); err != nil {
		log.Fatal(err)
	}
	log.Printf("wrote %d parts to %s", len(ps), *out)
}
