package cli

import (
	"fmt"
	"time"

	"github.com/spf13/pflag"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/aimhub/aim/internal/kube/backend"
	"github.com/aimhub/aim/internal/kube/buildgate"
	"github.com/aimhub/aim/internal/server"
	"github.com/aimhub/aim/internal/spec"
)

// kubeBuilds are the flags of `aim serve --runtime kubernetes` that turn on
// builds in the cluster; the chart sets them with builds.enabled.
type kubeBuilds struct {
	cfg         backend.BuildConfig
	cpu, memory string
	maxContext  spec.ByteSize
	credentials string
}

func (k *kubeBuilds) register(f *pflag.FlagSet) {
	j := &k.cfg.Job
	f.StringVar(&j.Namespace, "build-namespace", "", "with --runtime kubernetes: build components that name build: as Jobs in this namespace (default: builds are refused)")
	f.StringVar(&j.Image, "build-image", "localhost/aim/buildkit:0.34.2", "BuildKit image of the build Jobs (images/build.sh buildkit)")
	f.StringVar(&j.ServiceAccount, "build-service-account", "aim-build", "service account of the build Jobs (bound to no Role)")
	f.StringVar(&k.cfg.Registry, "build-registry", "", "host[:port] of the registry builds push to, as this API reaches it (through its registry gate)")
	f.BoolVar(&k.cfg.RegistryHTTP, "build-registry-http", false, "reach --build-registry over plain HTTP (the chart's in-cluster registry)")
	f.StringVar(&k.credentials, "build-registry-credentials", "", "Docker config file (config.json or a .dockerconfigjson) with this API's credentials for --build-registry; build pods never get them")
	f.StringVar(&k.cfg.GateAddr, "build-registry-gate", "", "listen address of the registry gate build pods push through with a token of their own (e.g. :5001); not the API's listener")
	f.StringVar(&j.Registry, "build-registry-gate-host", "", "host:port of the registry gate as build pods reach it (e.g. $(POD_IP):5001)")
	f.BoolVar(&j.MirrorDockerHub, "build-mirror-docker-hub", false, "builds resolve Docker Hub names in FROM lines in --build-registry first, through the gate")
	f.StringVar(&k.cfg.PullHost, "registry-host", "", "host[:port] of that registry as the nodes pull from it (default --build-registry)")
	f.StringVar(&k.cfg.APIURL, "build-api-url", "", "this API's URL as build pods reach it, to fetch their context (e.g. http://aim-api.aim-system.svc)")
	f.StringVar(&k.cpu, "build-cpu", "2", "CPU limit of a build")
	f.StringVar(&k.memory, "build-memory", "4Gi", "memory limit of a build")
	f.DurationVar(&j.Timeout, "build-timeout", 20*time.Minute, "time limit of a build")
	byteSizeVar(f, &k.maxContext, "build-max-context", 100<<20, "size limit of a component's build context")
}

// apply sets o.Kube.Builds when --build-namespace is given.
func (k *kubeBuilds) apply(o *server.Options) error {
	if k.cfg.Job.Namespace == "" {
		return nil
	}
	if k.cfg.Registry == "" || k.cfg.APIURL == "" || k.cfg.GateAddr == "" || k.cfg.Job.Registry == "" {
		return fmt.Errorf("--build-namespace needs --build-registry, --build-api-url, --build-registry-gate and --build-registry-gate-host")
	}
	// The gate is plain HTTP inside the cluster, as the context's fetch.
	k.cfg.Job.InsecureRegistry = true
	if k.credentials != "" {
		auth, err := buildgate.DockerConfigAuth(k.credentials, k.cfg.Registry)
		if err != nil {
			return fmt.Errorf("--build-registry-credentials: %w", err)
		}
		k.cfg.RegistryAuth = auth
	}
	for _, q := range []struct {
		flag, v string
		to      *resource.Quantity
	}{{"--build-cpu", k.cpu, &k.cfg.Job.CPU}, {"--build-memory", k.memory, &k.cfg.Job.Memory}} {
		v, err := resource.ParseQuantity(q.v)
		if err != nil {
			return fmt.Errorf("%s %q: %w", q.flag, q.v, err)
		}
		*q.to = v
	}
	k.cfg.Job.MaxContext = int64(k.maxContext)
	cfg := k.cfg
	o.Kube.Builds = &cfg
	return nil
}
