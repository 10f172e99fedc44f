package docker

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/aimhub/aim/internal/runtime"
	"github.com/aimhub/aim/internal/spec"
)

var update = flag.Bool("update", false, "rewrite golden files")

// TestCreateOptionsGolden pins the container definition of a solution's
// component: confinement, limits, user, labels, network and restart.
func TestCreateOptionsGolden(t *testing.T) {
	m, err := spec.Parse("aim.yaml", []byte(`name: shop
components:
  - name: web
    image: shop/web:1
    public: true
    env: {B: "2", A: "1"}
  - name: engine
    image: shop/engine:1
    runAsRoot: true
    resources: {cpu: 500m, memory: 1Gi, pids: 64}
  - name: store
    image: shop/store:1
    volumes:
      - {name: uploads, path: /data, size: 2Gi}
      - {name: models, path: /models, size: 1Gi, readOnly: true}
`))
	if err != nil {
		t.Fatal(err)
	}
	s := runtime.Spec{Manifest: m, Images: map[string]string{"web": "shop/web:1", "engine": "shop/engine:1"}, Generation: 7, Defaults: spec.DefaultDefaults}
	for _, tc := range []struct {
		name, comp, imageUser string
	}{
		{"root-image-runs-as-nobody", "web", ""},
		{"non-root-image-keeps-its-user", "web", "1000:1000"},
		{"run-as-root-with-resources", "engine", "root"},
		{"volumes-mounted-without-copy", "store", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			comp, _ := m.Component(tc.comp)
			cfg, host, netCfg := createOptions(s, comp, 1, Image{User: tc.imageUser}, "aim", "aim-shop")
			got, err := json.MarshalIndent(map[string]any{"config": cfg, "host": host, "network": netCfg}, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			golden := filepath.Join("testdata", tc.name+".golden.json")
			if *update {
				if err := os.WriteFile(golden, append(got, '\n'), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update)", err)
			}
			if string(append(got, '\n')) != string(want) {
				t.Errorf("create options changed:\n%s\nwant:\n%s", got, want)
			}
		})
	}
}

// TestDefaultHome pins when aim gives a process HOME=/tmp: uid 65534's
// home is /nonexistent, and Jupyter, among others, fails on it.
func TestDefaultHome(t *testing.T) {
	for _, tc := range []struct {
		name string
		img  Image
		user string // what aim runs it as; "" for the image's USER
		env  map[string]string
		want string
	}{
		{"a root image runs as 65534: HOME=/tmp", Image{}, nobody, nil, "/tmp"},
		{"the image's USER nobody", Image{User: "nobody"}, "", nil, "/tmp"},
		{"the image's USER 65534:65534", Image{User: "65534:65534"}, "", nil, "/tmp"},
		{"the image sets HOME", Image{Env: []string{"PATH=/bin", "HOME=/home/app"}}, nobody, nil, ""},
		{"the component's env sets HOME", Image{}, nobody, map[string]string{"HOME": "/tmp/home"}, ""},
		{"another user keeps its home", Image{User: "1000:1000"}, "", nil, ""},
		{"root keeps /root", Image{}, "", nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := defaultHome(tc.img, tc.user, tc.env); got != tc.want {
				t.Errorf("defaultHome = %q, want %q", got, tc.want)
			}
		})
	}
}
