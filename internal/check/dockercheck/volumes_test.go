package dockercheck

import (
	"slices"
	"testing"

	"github.com/aimhub/aim/internal/spec"
)

// TestWithoutVolumes: aim check of an app that keeps uploads in its volume
// failed read-only-fs with "wrote /data", the mount point the engine made.
func TestWithoutVolumes(t *testing.T) {
	comp := spec.Component{Volumes: []spec.Volume{{Name: "uploads", Path: "/data"}, {Name: "tsdb", Path: "/var/lib/app/tsdb"}}}
	got := withoutVolumes([]string{"/cache.bin", "/data", "/data2", "/var/lib/app", "/var/lib/app/tsdb/wal", "/var/log/app.log"}, comp)
	if want := []string{"/cache.bin", "/data2", "/var/log/app.log"}; !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}
