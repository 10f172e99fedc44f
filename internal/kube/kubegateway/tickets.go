package kubegateway

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/aimhub/aim/internal/edge"
	"github.com/aimhub/aim/internal/kube/ticketkeys"
)

// ticketCerts serves cs's certificates with the replicas' shared ticket
// keys.
type ticketCerts struct {
	edge.Certificates
	ring *ticketkeys.Ring
}

func (c *ticketCerts) TLSConfig() *tls.Config { return c.ring.TLSConfig(c.Certificates.TLSConfig()) }

// sharedTickets wraps cs with the ticket keys of secret ("namespace/name"),
// synced until ctx ends. A first sync that fails is no reason not to
// serve: the replica uses keys of its own until the Secret answers.
func sharedTickets(ctx context.Context, rc *rest.Config, secret string, cs edge.Certificates, log *slog.Logger) (edge.Certificates, error) {
	ns, name, ok := strings.Cut(secret, "/")
	if !ok || ns == "" || name == "" {
		return nil, fmt.Errorf("the ticket keys' Secret %q: want namespace/name", secret)
	}
	kc, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return nil, err
	}
	ring, err := ticketkeys.New(kc, ticketkeys.Config{Namespace: ns, Name: name, Logger: log})
	if err != nil {
		return nil, err
	}
	first, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := ring.Sync(first); err != nil {
		log.Warn("TLS session ticket keys: the Secret is unavailable for now", "err", err)
	}
	go func() { _ = ring.Run(ctx) }()
	return &ticketCerts{Certificates: cs, ring: ring}, nil
}
