package docker

import (
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
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
  - name: model
    image: shop/model:1
    writable: [/var/lib/nginx, {path: /home/app/.cache, size: 256Mi}]
    resources: {gpu: 1}
  - name: store
    image: shop/store:1
    volumes:
      - {name: uploads, path: /data, size: 2Gi}
      - {name: models, path: /models, size: 1Gi, readOnly: true}
`))
	if err != nil {
		t.Fatal(err)
	}
	s := runtime.Spec{Manifest: m, Images: map[string]string{"web": "shop/web:1", "engine": "shop/engine:1", "model": "shop/model:1"}, Generation: 7, Defaults: spec.DefaultDefaults}
	for _, tc := range []struct {
		name, comp, imageUser string
	}{
		{"root-image-runs-as-nobody", "web", ""},
		{"non-root-image-keeps-its-user", "web", "1000:1000"},
		{"run-as-root-with-resources", "engine", "root"},
		{"writable-paths-and-a-gpu", "model", ""},
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
		env  map[string]spec.EnvValue
		want string
	}{
		{"a root image runs as 65534: HOME=/tmp", Image{}, nobody, nil, "/tmp"},
		{"the image's USER nobody", Image{User: "nobody"}, "", nil, "/tmp"},
		{"the image's USER 65534:65534", Image{User: "65534:65534"}, "", nil, "/tmp"},
		{"the image sets HOME", Image{Env: []string{"PATH=/bin", "HOME=/home/app"}}, nobody, nil, ""},
		{"the component's env sets HOME", Image{}, nobody, map[string]spec.EnvValue{"HOME": spec.Plain("/tmp/home")}, ""},
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

// TestAddSecrets: a secret's value joins the environment at create, and
// only there (createOptions, which the goldens pin, never has it); one
// that is not set fails the create with the command that sets it.
func TestAddSecrets(t *testing.T) {
	comp := spec.Component{Name: "web", Env: map[string]spec.EnvValue{"A": spec.Plain("1"), "KEY": spec.SecretRef("api-key")}}
	m := &spec.Manifest{Name: "shop", Components: []spec.Component{comp}}
	open := func(vals map[string]string) func(context.Context) (map[string]string, error) {
		return func(context.Context) (map[string]string, error) { return vals, nil }
	}
	for _, tc := range []struct {
		name    string
		secrets func(context.Context) (map[string]string, error)
		want    string // the last env entry, or the error
	}{
		{"set", open(map[string]string{"api-key": "sk-1"}), "KEY=sk-1"},
		{"not set", open(map[string]string{}), `component web: env KEY names secret "api-key", which is not set (aim secret set shop api-key)`},
		{"no secrets", nil, `component web: env KEY names secret "api-key", and aim has no secrets for shop`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := runtime.Spec{Manifest: m, Images: map[string]string{"web": "img"}, Generation: 1, Secrets: tc.secrets}
			cfg, _, _ := createOptions(s, comp, 0, Image{}, "aim", "aim-shop")
			for _, kv := range cfg.Env {
				if strings.HasPrefix(kv, "KEY=") {
					t.Fatalf("createOptions has %s", kv)
				}
			}
			got := ""
			if err := addSecrets(context.Background(), s, comp, cfg); err != nil {
				got = err.Error()
			} else {
				got = cfg.Env[len(cfg.Env)-1]
			}
			if got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

// TestWritableOwner pins who owns a writable path's tmpfs: the user the
// container runs as, which the kernel takes only as numbers.
func TestWritableOwner(t *testing.T) {
	for _, tc := range []struct {
		name, user, want string
	}{
		{"aim's nobody", nobody, "uid=65534,gid=65534,mode=0755"},
		{"root", "", "uid=0,gid=0,mode=0755"},
		{"USER nobody", "nobody", "uid=65534,gid=65534,mode=0755"},
		{"USER 1000:1000", "1000:1000", "uid=1000,gid=1000,mode=0755"},
		{"USER 1000", "1000", "uid=1000,gid=0,mode=0755"},
		{"USER 1000:staff: a group the kernel cannot take", "1000:staff", "mode=1777"},
		{"USER 65534", "65534", "uid=65534,gid=65534,mode=0755"},
		{"USER app: a name the kernel cannot take", "app", "mode=1777"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := writableTmpfs([]spec.Writable{{Path: "/run", Size: 1 << 20}}, tc.user)["/run"]
			if want := "rw,nosuid,nodev,size=1048576," + tc.want; got != want {
				t.Errorf("got %q, want %q", got, want)
			}
		})
	}
}

func TestGPUProblem(t *testing.T) {
	want := []string{"model asks for 1 (resources.gpu)"}
	if err := gpuProblem("shop", want, []string{"io.containerd.runc.v2", "nvidia", "runc"}); err != nil {
		t.Errorf("an engine with the nvidia runtime: %v", err)
	}
	err := gpuProblem("shop", want, []string{"io.containerd.runc.v2", "runc"})
	if err == nil || !strings.Contains(err.Error(), "solution shop needs GPUs (model asks for 1 (resources.gpu)), but this Docker engine has no NVIDIA GPU runtime (its runtimes: io.containerd.runc.v2, runc)") {
		t.Errorf("an engine without: %v", err)
	}
}
