package kube

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"

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
// with every replica sharing the Secrets of namespace. httpAddr and
// httpsAddr are the pod's listeners: certmagic finds them taken and so
// never listens itself, and the challenges reach them through the
// Service.
func acmeManager(ctx context.Context, rc *rest.Config, namespace string, acme certs.Config, routes *gateway.Table, domain, httpAddr, httpsAddr string, log *slog.Logger) (*certs.Manager, error) {
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
	tc.Allow = func(_ context.Context, name string) error {
		if !routes.Has(name) {
			return fmt.Errorf("no solution %q", name)
		}
		return nil
	}
	if tc.HTTPPort, err = portOf(httpAddr); err != nil {
		return nil, err
	}
	if tc.HTTPSPort, err = portOf(httpsAddr); err != nil {
		return nil, err
	}
	m, err := certs.New(ctx, tc)
	if err != nil {
		return nil, fmt.Errorf("--tls=acme: %w", err)
	}
	log.Info("ACME on demand for the apex and existing solutions", "ca", tc.ACMECA, "storage", st.String())
	return m, nil
}

// listenAddr is ln's address if there is one, else addr.
func listenAddr(ln net.Listener, addr string) string {
	if ln != nil {
		return ln.Addr().String()
	}
	return addr
}

func portOf(addr string) (int, error) {
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		return 0, fmt.Errorf("listen address %q: %w", addr, err)
	}
	return strconv.Atoi(p)
}

// withChallenges answers the ACME HTTP-01 challenges any replica started
// before next (the redirect to HTTPS) sees the request.
func withChallenges(m *certs.Manager, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if m.HandleHTTPChallenge(w, r) {
			return
		}
		next.ServeHTTP(w, r)
	})
}
