package docker

import (
	"errors"
	"fmt"
	"strings"

	"github.com/coreos/go-iptables/iptables"
	"github.com/docker/docker/api/types/network"
)

// The chains aim keeps its egress rules in. They are shared by every aim
// on the host (each guards its own bridges) and never removed.
const (
	// ChainForward is jumped to from DOCKER-USER: what a solution's
	// containers send through the engine to other networks.
	ChainForward = "AIM-EGRESS"
	// ChainHost is jumped to from INPUT: what they send to the host's
	// own addresses, which never passes FORWARD.
	ChainHost = "AIM-EGRESS-HOST"
)

// blocked are the destinations a solution's default egress keeps out:
// the private ranges (RFC 1918), carrier-grade NAT (which clouds and
// Kubernetes use for pods and services) and link-local, where the cloud's
// metadata address 169.254.169.254 lives.
var blocked = []string{"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "169.254.0.0/16"}

// Rule is one iptables rule in one of aim's chains.
type Rule struct {
	Chain string
	Spec  []string
}

// bridgeRules are the rules that confine a solution's bridge: answers to
// connections made to it (the gateway's) pass, as does traffic among its
// own containers; new connections to the host, to other bridges and to
// the blocked ranges are dropped. The internet stays reachable (or, for
// an internal network, unroutable by the engine's own rules).
func bridgeRules(bridge string) []Rule {
	est := []string{"-i", bridge, "-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED", "-j", "RETURN"}
	rs := []Rule{
		{ChainHost, est},
		{ChainHost, []string{"-i", bridge, "-j", "DROP"}},
		{ChainForward, est},
		{ChainForward, []string{"-i", bridge, "-o", bridge, "-j", "RETURN"}},
	}
	for _, cidr := range blocked {
		rs = append(rs, Rule{ChainForward, []string{"-i", bridge, "-d", cidr, "-j", "DROP"}})
	}
	return append(rs,
		Rule{ChainForward, []string{"-i", bridge, "-o", "br-+", "-j", "DROP"}},
		Rule{ChainForward, []string{"-i", bridge, "-o", "docker0", "-j", "DROP"}},
	)
}

// Firewall keeps solutions' bridges confined with iptables (IPv4; aim's
// networks have no IPv6). It uses whichever backend the iptables binary
// is (nf_tables or legacy), the same one the engine uses for its chains.
type Firewall struct {
	ipt *iptables.IPTables
}

// NewFirewall makes aim's chains and the jumps to them, at the head of
// DOCKER-USER and INPUT, unless they are there already.
func NewFirewall() (*Firewall, error) {
	ipt, err := iptables.New()
	if err != nil {
		return nil, fmt.Errorf("finding iptables: %w", err)
	}
	for _, j := range []struct{ from, to string }{{"DOCKER-USER", ChainForward}, {"INPUT", ChainHost}} {
		ok, err := ipt.ChainExists("filter", j.to)
		if err != nil {
			return nil, fmt.Errorf("listing chain %s: %w", j.to, err)
		}
		if !ok {
			if err := ipt.NewChain("filter", j.to); err != nil {
				return nil, fmt.Errorf("creating chain %s: %w", j.to, err)
			}
		}
		if err := ipt.InsertUnique("filter", j.from, 1, "-j", j.to); err != nil {
			return nil, fmt.Errorf("jumping from %s to %s: %w", j.from, j.to, err)
		}
	}
	return &Firewall{ipt: ipt}, nil
}

// Guard confines bridge; it is idempotent.
func (f *Firewall) Guard(bridge string) error {
	for _, r := range bridgeRules(bridge) {
		if err := f.ipt.AppendUnique("filter", r.Chain, r.Spec...); err != nil {
			return fmt.Errorf("confining %s: %w", bridge, err)
		}
	}
	return nil
}

// Release removes bridge's rules once its network is gone.
func (f *Firewall) Release(bridge string) error {
	var errs []error
	for _, r := range bridgeRules(bridge) {
		if err := f.ipt.DeleteIfExists("filter", r.Chain, r.Spec...); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("releasing %s: %w", bridge, errors.Join(errs...))
	}
	return nil
}

// bridgeName is the Linux bridge of a network: the name its options set,
// or the engine's default of "br-" and the ID's first twelve characters.
func bridgeName(nw network.Inspect) string {
	if n := nw.Options["com.docker.network.bridge.name"]; n != "" {
		return n
	}
	if len(nw.ID) < 12 {
		return ""
	}
	return "br-" + nw.ID[:12]
}

// Prune removes the rules of bridges that no longer exist (a network
// removed by hand, or by an engine restart while aim was down): live
// holds every bridge on the engine, aim's or not.
func (f *Firewall) Prune(live map[string]bool) error {
	// A bridge has a dozen rules in two chains; Release takes them all,
	// so each gone bridge is released once.
	gone := map[string]bool{}
	for _, chain := range []string{ChainForward, ChainHost} {
		rules, err := f.ipt.List("filter", chain)
		if err != nil {
			return fmt.Errorf("listing chain %s: %w", chain, err)
		}
		for _, r := range rules {
			if b := inBridge(r); b != "" && !live[b] {
				gone[b] = true
			}
		}
	}
	var errs []error
	for b := range gone {
		if err := f.Release(b); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// inBridge is the -i interface of a rule in iptables -S form.
func inBridge(rule string) string {
	fs := strings.Fields(rule)
	for i := 0; i+1 < len(fs); i++ {
		if fs[i] == "-i" {
			return fs[i+1]
		}
	}
	return ""
}
