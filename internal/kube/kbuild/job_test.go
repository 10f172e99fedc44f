package kbuild

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"
	"sigs.k8s.io/yaml"
)

var update = flag.Bool("update", false, "rewrite golden files")

func chartOptions() Options {
	return Options{
		Namespace:        "aim-system-builds",
		Image:            "localhost/aim/buildkit:0.34.2",
		ServiceAccount:   "aim-build",
		Registry:         "10.42.0.7:5001",
		InsecureRegistry: true,
		MirrorDockerHub:  true,
	}
}

func partComparerAPI() Build {
	return Build{
		ID:          "part-comparer-api-7f3a",
		Solution:    "part-comparer",
		Component:   "api",
		Dir:         "api",
		ContextURL:  "http://aim-api.aim-system.svc/api/v1/builds/7f3a/context",
		TokenSecret: "aim-build-part-comparer-api-7f3a",
	}
}

// The Jobs the goldens show: the chart's in-cluster registry with the
// defaults, and an existing registry over HTTPS with limits of its own.
func TestJobGolden(t *testing.T) {
	external := chartOptions()
	external.Registry, external.MirrorDockerHub = "10.42.0.9:5001", false
	external.CPU, external.Memory, external.Storage = resource.MustParse("1"), resource.MustParse("1Gi"), resource.MustParse("2Gi")
	external.Timeout, external.MaxContext, external.TTL = 5*time.Minute, 10<<20, 10*time.Minute
	root := partComparerAPI()
	root.Dir, root.Dockerfile = ".", "Containerfile"
	for _, c := range []struct {
		name  string
		opts  Options
		build Build
	}{
		{"in-cluster-registry", chartOptions(), partComparerAPI()},
		{"external-registry-limits", external, root},
	} {
		t.Run(c.name, func(t *testing.T) {
			job, err := c.opts.Job(c.build)
			if err != nil {
				t.Fatal(err)
			}
			// The build's Secret too, with tokens that are not random.
			sec := c.opts.Secret(c.build, job.Labels, "context-token", "gate-token")
			got, err := yaml.Marshal(job)
			if err != nil {
				t.Fatal(err)
			}
			s, err := yaml.Marshal(sec)
			if err != nil {
				t.Fatal(err)
			}
			got = append(append(got, "---\n"...), s...)
			golden := filepath.Join("testdata", c.name+".yaml")
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to write it)", err)
			}
			if string(got) != string(want) {
				t.Errorf("%s differs from the rendered Job (run with -update to accept):\n%s", golden, got)
			}
		})
	}
}

// What every build Job keeps, whatever the options: no API token, no
// retry, a deadline, and root nowhere.
func TestJobInvariants(t *testing.T) {
	job, err := chartOptions().Job(partComparerAPI())
	if err != nil {
		t.Fatal(err)
	}
	pod := job.Spec.Template.Spec
	if pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken {
		t.Error("the build pod mounts the service account's token")
	}
	if *job.Spec.BackoffLimit != 0 || job.Spec.ActiveDeadlineSeconds == nil || *job.Spec.ActiveDeadlineSeconds != 1200 {
		t.Errorf("backoffLimit %d, activeDeadlineSeconds %v: want 0 and 1200", *job.Spec.BackoffLimit, job.Spec.ActiveDeadlineSeconds)
	}
	for _, c := range append(pod.InitContainers, pod.Containers...) {
		if c.SecurityContext.Privileged != nil && *c.SecurityContext.Privileged {
			t.Errorf("container %s is privileged", c.Name)
		}
		if c.Resources.Limits.Memory().IsZero() || c.Resources.Limits.Cpu().IsZero() {
			t.Errorf("container %s has no CPU or memory limit", c.Name)
		}
	}
	if *pod.SecurityContext.RunAsUser == 0 || !*pod.SecurityContext.RunAsNonRoot {
		t.Error("the build pod may run as root")
	}
	// No Secret but the build's own: the registry's credential is the
	// gate's, never a build pod's.
	for _, v := range pod.Volumes {
		if v.Secret != nil && v.Secret.SecretName != partComparerAPI().TokenSecret {
			t.Errorf("volume %s mounts Secret %s, not the build's own", v.Name, v.Secret.SecretName)
		}
		if v.Projected != nil || v.ConfigMap != nil {
			t.Errorf("volume %s projects a Secret or ConfigMap", v.Name)
		}
	}
	for _, c := range append(pod.InitContainers, pod.Containers...) {
		if len(c.EnvFrom) > 0 {
			t.Errorf("container %s takes its environment from a Secret or ConfigMap", c.Name)
		}
		for _, e := range c.Env {
			if e.ValueFrom != nil {
				t.Errorf("container %s: %s comes from elsewhere", c.Name, e.Name)
			}
		}
	}
	// The build container sees the gate token, not the context's header;
	// the fetch the header only.
	keys := map[string][]string{}
	for _, v := range pod.Volumes {
		if v.Secret != nil {
			for _, it := range v.Secret.Items {
				keys[v.Name] = append(keys[v.Name], it.Key)
			}
		}
	}
	for _, c := range append(pod.InitContainers, pod.Containers...) {
		var saw []string
		for _, m := range c.VolumeMounts {
			saw = append(saw, keys[m.Name]...)
		}
		want := map[string]string{"fetch": SecretKeyHeader, "unpack": "", "build": SecretKeyDockerConfig + " " + SecretKeyBuildkitd}[c.Name]
		if got := strings.Join(saw, " "); got != want {
			t.Errorf("container %s sees the build Secret's keys %q, want %q", c.Name, got, want)
		}
	}
}

func TestJobRefuses(t *testing.T) {
	for _, c := range []struct {
		name string
		edit func(*Options, *Build)
		want string
	}{
		{"no registry", func(o *Options, _ *Build) { o.Registry = "" }, "Options.Registry is required"},
		{"no image", func(o *Options, _ *Build) { o.Image = "" }, "Options.Image is required"},
		{"upper-case ID", func(_ *Options, b *Build) { b.ID = "Build1" }, `build ID "Build1"`},
		{"long ID", func(_ *Options, b *Build) { b.ID = strings.Repeat("a", 41) }, "at most 40"},
		{"bad component", func(_ *Options, b *Build) { b.Component = "my_api" }, `Component "my_api"`},
		{"no context", func(_ *Options, b *Build) { b.ContextURL = "" }, "ContextURL and TokenSecret are required"},
		{"dir outside", func(_ *Options, b *Build) { b.Dir = "api/../../etc" }, `Dir "api/../../etc" must be relative`},
		{"absolute dir", func(_ *Options, b *Build) { b.Dir = "/etc" }, `Dir "/etc" must be relative`},
		{"dockerfile path", func(_ *Options, b *Build) { b.Dockerfile = "../Dockerfile" }, `Dockerfile "../Dockerfile" a file name`},
		{"short timeout", func(o *Options, _ *Build) { o.Timeout = time.Millisecond }, "at least 1s"},
	} {
		t.Run(c.name, func(t *testing.T) {
			o, b := chartOptions(), partComparerAPI()
			c.edit(&o, &b)
			_, err := o.Job(b)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want one containing %q", err, c.want)
			}
		})
	}
}
