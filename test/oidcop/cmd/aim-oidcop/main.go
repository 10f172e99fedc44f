// Command aim-oidcop runs the test OpenID Connect provider of
// test/oidcop on its own, for the demo and for trying aim's sign-in by
// hand. It prints the issuer URL alone on the first line of its output,
// logs to standard error, and stops on SIGINT or SIGTERM.
//
//	aim-oidcop -config op.yaml
//	aim-oidcop -redirect-uri http://127.0.0.1:8080/callback [-issuer http://127.0.0.1:5556]
//
// Without -config it knows one client (-client-id, -client-secret,
// -redirect-uri, -post-logout-uri) and two demo users, alice (password
// "alice", group aim-admins) and bob (password "bob", group aim-users).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/aimhub/aim/test/oidcop"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	switch {
	case errors.Is(err, flag.ErrHelp):
	case errors.Is(err, errUsage):
		os.Exit(2)
	case err != nil:
		fmt.Fprintln(os.Stderr, "aim-oidcop:", err)
		os.Exit(1)
	}
}

var errUsage = errors.New("usage")

// defaultIssuer is where the provider runs when neither -issuer nor the
// configuration file says.
const defaultIssuer = "http://127.0.0.1:5556"

// demoUsers are the users when no configuration file names any.
var demoUsers = []oidcop.User{
	{Username: "alice", Password: "alice", Email: "alice@example.test", Name: "Alice Admin", Groups: []string{"aim-admins"}},
	{Username: "bob", Password: "bob", Email: "bob@example.test", Name: "Bob User", Groups: []string{"aim-users"}},
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("aim-oidcop", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configFile := fs.String("config", "", "configuration `file`, YAML or JSON (see test/oidcop.Config)")
	issuer := fs.String("issuer", "", "issuer `URL` (default: the configuration's, else http:// and the listen address, else "+defaultIssuer+")")
	addr := fs.String("addr", "", "listen `address` (default: the configuration's, else the issuer's host and port)")
	clientID := fs.String("client-id", "aim-demo", "the client's id, without -config")
	clientSecret := fs.String("client-secret", "aim-demo-secret", "the client's secret, without -config")
	var redirects, postLogout stringList
	fs.Var(&redirects, "redirect-uri", "a redirect `URI` of the client, without -config (repeatable)")
	fs.Var(&postLogout, "post-logout-uri", "a post-logout redirect `URI` of the client, without -config (repeatable)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "aim-oidcop: unexpected arguments %q\n", fs.Args())
		return errUsage
	}

	var cfg oidcop.Config
	if *configFile != "" {
		var err error
		if cfg, err = oidcop.LoadConfig(*configFile); err != nil {
			return err
		}
	} else {
		if len(redirects) == 0 {
			fmt.Fprintln(stderr, "aim-oidcop: give -config, or -redirect-uri for the one client")
			return errUsage
		}
		cfg.Clients = []oidcop.Client{{ID: *clientID, Secret: *clientSecret, RedirectURIs: redirects, PostLogoutRedirectURIs: postLogout}}
		cfg.Users = demoUsers
	}
	if *issuer != "" {
		cfg.Issuer = *issuer
	}
	if *addr != "" {
		cfg.Addr = *addr
	}
	if cfg.Issuer == "" && cfg.Addr == "" {
		cfg.Issuer = defaultIssuer
	}
	cfg.Logger = slog.New(slog.NewTextHandler(stderr, nil))

	s, err := oidcop.New(cfg)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, s.Issuer)
	for _, c := range cfg.Clients {
		cfg.Logger.Info("client", "id", c.ID, "redirect_uris", c.RedirectURIs, "post_logout_redirect_uris", c.PostLogoutRedirectURIs)
	}
	for _, u := range cfg.Users {
		cfg.Logger.Info("user", "username", u.Username, "groups", u.Groups)
	}
	return s.Run(ctx)
}

// stringList is a flag that may be given more than once.
type stringList []string

func (l *stringList) String() string { return strings.Join(*l, ",") }

func (l *stringList) Set(v string) error {
	*l = append(*l, v)
	return nil
}
