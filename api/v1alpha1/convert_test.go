package v1alpha1

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/aimhub/aim/internal/spec"
)

// TestRoundTrip converts the example manifests to a SolutionSpec, through
// JSON as the API server stores it, and back.
func TestRoundTrip(t *testing.T) {
	// valid-ready.yaml names ready paths, valid-secret.yaml secrets,
	// valid-writable.yaml writable paths and a GPU, and valid-volumes.yaml
	// volumes, which the examples do not.
	for _, dir := range []string{"../../examples/part-comparer", "../../examples/text-embedding", "../../internal/spec/testdata/valid-ready.yaml", "../../internal/spec/testdata/valid-secret.yaml", "../../internal/spec/testdata/valid-writable.yaml", "../../internal/spec/testdata/valid-volumes.yaml"} {
		t.Run(dir, func(t *testing.T) {
			m, err := spec.ReadFile(dir)
			if err != nil {
				t.Fatal(err)
			}
			images := map[string]string{}
			for _, c := range m.Components {
				images[c.Name] = "registry.example/" + m.Name + "-" + c.Name + ":1"
			}
			s := FromManifest(m, images)
			b, err := json.Marshal(s)
			if err != nil {
				t.Fatal(err)
			}
			var stored SolutionSpec
			if err := json.Unmarshal(b, &stored); err != nil {
				t.Fatal(err)
			}
			got, err := ToManifest(m.Name, stored)
			if err != nil {
				t.Fatalf("ToManifest: %v\nspec: %s", err, b)
			}
			want := *m
			want.Components = append([]spec.Component(nil), m.Components...)
			for i := range want.Components {
				c := &want.Components[i]
				c.Image, c.Build, c.Dockerfile = images[c.Name], "", ""
			}
			if !reflect.DeepEqual(got, &want) {
				g, _ := json.MarshalIndent(got, "", "  ")
				w, _ := json.MarshalIndent(&want, "", "  ")
				t.Errorf("round trip changed the manifest:\ngot  %s\nwant %s", g, w)
			}
		})
	}
}

// TestRoundTripVisibility converts each visibility, a private
// solution's access list and each egress to a SolutionSpec, through JSON, and back; the
// spec carries them under the names the CRD's schema gives them.
func TestRoundTripVisibility(t *testing.T) {
	for _, tc := range []struct {
		name, yaml string
		wantJSON   string // in the spec's JSON, "" for no visibility or access
	}{
		{"unset", "", ""},
		{"public", "visibility: public\n", `"visibility":"public"`},
		{"unlisted", "visibility: unlisted\n", `"visibility":"unlisted"`},
		{"private", "visibility: private\naccess:\n  emails: [Ada@Example.com]\n  domains: [example.org]\n  groups: [cad-team]\n",
			`"visibility":"private","access":{"emails":["Ada@Example.com"],"domains":["example.org"],"groups":["cad-team"]}`},
		{"private, one kind of entry", "visibility: private\naccess: {groups: [beta]}\n", `"visibility":"private","access":{"groups":["beta"]}`},
		{"egress default", "egress: default\n", `"egress":"default"`},
		{"egress none", "egress: none\n", `"egress":"none"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := spec.Parse("aim.yaml", []byte("name: shop\ncomponents:\n  - name: web\n    image: web:1\n"+tc.yaml))
			if err != nil {
				t.Fatal(err)
			}
			b, err := json.Marshal(FromManifest(m, nil))
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(b), tc.wantJSON) || tc.wantJSON == "" && strings.Contains(string(b), `"access"`) {
				t.Errorf("spec %s\nwant it to hold %s", b, tc.wantJSON)
			}
			var stored SolutionSpec
			if err := json.Unmarshal(b, &stored); err != nil {
				t.Fatal(err)
			}
			got, err := ToManifest(m.Name, stored)
			if err != nil {
				t.Fatalf("ToManifest: %v\nspec: %s", err, b)
			}
			if !reflect.DeepEqual(got, m) {
				t.Errorf("round trip changed the manifest:\ngot  %+v\nwant %+v", got, m)
			}
		})
	}
}

// TestOwner: the owner is the spec's alone, checked as a provider's name
// is, and kept out of the manifest.
func TestOwner(t *testing.T) {
	s := SolutionSpec{Owner: "acme", Components: []Component{{Name: "web", Image: "web:1"}}}
	m, err := ToManifest("shop", s)
	if err != nil {
		t.Fatal(err)
	}
	if back := FromManifest(m, nil); back.Owner != "" {
		t.Errorf("FromManifest made up an owner: %q", back.Owner)
	}
	for _, tc := range []struct {
		name, spec, annotation, want string
	}{
		{"the spec's", "acme", "", "acme"},
		{"an earlier aim's annotation", "", "beta", "beta"},
		{"the spec wins", "acme", "beta", "acme"},
		{"the admins'", "", "", ""},
	} {
		sol := &Solution{Spec: SolutionSpec{Owner: tc.spec}}
		if tc.annotation != "" {
			sol.Annotations = map[string]string{AnnotationOwner: tc.annotation}
		}
		if got := OwnerOf(sol); got != tc.want {
			t.Errorf("%s: OwnerOf = %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestToManifestErrors(t *testing.T) {
	yes := true
	qty := func(s string) *resource.Quantity { q := resource.MustParse(s); return &q }
	web := func() Component { return Component{Name: "web", Image: "web:1", Public: &yes} }
	for _, tc := range []struct {
		name    string
		solName string
		spec    func(*SolutionSpec)
		want    string
	}{
		{"bad name", "Shop", func(*SolutionSpec) {}, `metadata.name: "Shop" is not a DNS label: use lower-case letters, digits and '-', starting and ending with a letter or digit`},
		{"reserved name", "wpad", func(*SolutionSpec) {}, `metadata.name: "wpad" is reserved: wpad.<domain> could pass for the platform's own (choose another name)`},
		{"duplicate component", "shop", func(s *SolutionSpec) { s.Components = append(s.Components, web()) },
			`spec.components[1].name: "web" is used by another component`},
		{"second component name", "shop", func(s *SolutionSpec) {
			s.Components = append(s.Components, Component{Name: "Engine", Image: "e:1"})
		}, `spec.components[1].name: "Engine" is not a DNS label: use lower-case letters, digits and '-', starting and ending with a letter or digit`},
		{"paths on a private component", "shop", func(s *SolutionSpec) {
			s.Components = append(s.Components, Component{Name: "engine", Image: "e:1", Paths: []string{"/x"}})
		}, `spec.components[1].paths: only a public component has paths; add public: true`},
		{"bad env name", "shop", func(s *SolutionSpec) { s.Components[0].Env = map[string]string{"A-B": "1"} },
			`spec.components[0].env.A-B: "A-B" is not a valid environment variable name`},
		{"zero cpu", "shop", func(s *SolutionSpec) { s.Components[0].Resources.CPU = qty("0") },
			`spec.components[0].resources.cpu: 0 is not a positive amount of CPU (at least 1m)`},
		{"negative memory", "shop", func(s *SolutionSpec) { s.Components[0].Resources.Memory = qty("-1Mi") },
			`spec.components[0].resources.memory: -1Mi is not a positive size`},
		{"min above max", "shop", func(s *SolutionSpec) { s.Scaling.Min, s.Scaling.Max = 3, 2 },
			`spec.scaling.min: is 3, above max 2`},
		{"negative idle", "shop", func(s *SolutionSpec) { s.Scaling.Idle = &metav1.Duration{Duration: -1} },
			`spec.scaling.idle: "-1ns" is not a positive duration`},
		{"second public without paths", "shop", func(s *SolutionSpec) {
			s.Components = append(s.Components, Component{Name: "api", Image: "a:1", Public: &yes})
		}, `spec.components[1].paths: a public component other than the first must name its path prefixes, e.g. [/api]`},
		{"ready path with a dot segment", "shop", func(s *SolutionSpec) { s.Components[0].Ready.Path = "/a/../ready" },
			`spec.components[0].ready.path: "/a/../ready" is not a clean absolute path like /-/ready (URL path characters only: no query, no spaces, no . or .. segments)`},
		{"bad node group", "shop", func(s *SolutionSpec) { s.NodeGroup = "GPU" },
			`spec.nodeGroup: "GPU" is not a DNS label: use lower-case letters, digits and '-', starting and ending with a letter or digit`},
		{"a phase named twice", "shop", func(s *SolutionSpec) { s.Phases = []string{"product-development", "product-development"} },
			`spec.phases[1]: "product-development" is named twice`},
		{"bad owner", "shop", func(s *SolutionSpec) { s.Owner = "Acme Inc" },
			`spec.owner: "Acme Inc" is not a DNS label: use lower-case letters, digits and '-', starting and ending with a letter or digit`},
		{"unknown visibility", "shop", func(s *SolutionSpec) { s.Visibility = "secret" },
			`spec.visibility: "secret" is not one of public, unlisted, private`},
		{"unknown egress", "shop", func(s *SolutionSpec) { s.Egress = "open" },
			`spec.egress: "open" is not one of default, none`},
		{"private without access", "shop", func(s *SolutionSpec) { s.Visibility = "private" },
			`spec.access: a private solution needs at least one of emails, domains or groups (its provider and the admins are always admitted)`},
		{"private with an empty access list", "shop", func(s *SolutionSpec) { s.Visibility, s.Access = "private", &Access{} },
			`spec.access: a private solution needs at least one of emails, domains or groups (its provider and the admins are always admitted)`},
		{"access on a public solution", "shop", func(s *SolutionSpec) { s.Access = &Access{Emails: []string{"ada@example.com"}} },
			`spec.access: only a private solution has an access list; add visibility: private`},
		{"writable /", "shop", func(s *SolutionSpec) { s.Components[0].Writable = []Writable{{Path: "/"}} },
			`spec.components[0].writable[0]: "/" would make the whole root filesystem writable: name the directories the program writes, e.g. /var/lib/nginx`},
		{"writable of size zero", "shop", func(s *SolutionSpec) { s.Components[0].Writable = []Writable{{Path: "/run", Size: qty("0")}} },
			`spec.components[0].writable[0].size: 0 is not a positive size`},
		{"gpuType without gpu", "shop", func(s *SolutionSpec) { s.Components[0].Resources.GPUType = "NVIDIA-L4" },
			`spec.components[0].resources.gpuType: only goes with gpu: add gpu: 1`},
		{"bad access entries", "shop", func(s *SolutionSpec) {
			s.Visibility, s.Access = "private", &Access{Emails: []string{"ada"}, Domains: []string{"*.example.com"}, Groups: []string{""}}
		}, `spec.access.emails[0]: "ada" is not an e-mail address; spec.access.domains[0]: "*.example.com" is not a domain like example.com; spec.access.groups[0]: a group name has 1 to 256 characters on one line`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := SolutionSpec{Components: []Component{web()}}
			tc.spec(&s)
			_, err := ToManifest(tc.solName, s)
			if err == nil {
				t.Fatal("accepted")
			}
			if err.Error() != tc.want {
				t.Errorf("got  %s\nwant %s", err, tc.want)
			}
		})
	}
}
