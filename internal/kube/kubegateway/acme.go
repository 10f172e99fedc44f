package kubegateway

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/aimhub/aim/internal/certs"
	"github.com/aimhub/aim/internal/gateway"
	"github.com/aimhub/aim/internal/kube/certstore"
)

// The gateway's own ACME (--tls=acme) keeps certificates, the account and
// challenges in Secrets and its locks in Leases of its own namespace
// (certstore), for which it needs, in that namespace only (the chart's
// <release>-gateway-acme Role): secrets get, list, create, update,
// delete; leases get, create, update, delete.

// acmeManager is the certs.Manager of `aim gateway --tls=acme`: ACME on
// demand for the apex and the names of Solutions the gateway routes,
// with every replica sharing the Secrets of namespace. httpPort and
// httpsPort are the pod's listeners'.
func acmeManager(ctx context.Context, rc *rest.Config, namespace string, acme certs.Config, routes *gateway.Table, domain string, httpPort, httpsPort int, log *slog.Logger) (*certs.Manager, error) {
	kc, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return nil, err
	}
	st, err := certstore.New(kc, certstore.Config{Namespace: namespace, Logger: log})
	if err != nil {
		return nil, err
	}
	tc := acme
	tc.Mode, tc.Domain, tc.Storage, tc.Logger = certs.ModeACME, domain, st, log
	tc.HTTPPort, tc.HTTPSPort = httpPort, httpsPort
	tc.Allow = routes.AllowCertificate
	m, err := certs.New(ctx, tc)
	if err != nil {
		return nil, fmt.Errorf("--tls=acme: %w", err)
	}
	log.Info("ACME on demand for the apex and existing solutions", "ca", tc.ACMECA, "storage", st.String())
	return m, nil
}

// acmeCerts is the gateway's own ACME: plain HTTP answers the HTTP-01
// challenges any replica started, before it redirects the domain's
// requests, and serves the rest (the kubelet's probes, Prometheus).
type acmeCerts struct {
	*certs.Manager
	domain string
}

func (c *acmeCerts) HTTPHandler(next http.Handler) http.Handler {
	redirect := redirectToHTTPS(c.domain, next)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if c.HandleHTTPChallenge(w, r) {
			return
		}
		redirect.ServeHTTP(w, r)
	})
}
