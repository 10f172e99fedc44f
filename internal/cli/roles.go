package cli

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/aimhub/aim/internal/api"
)

// databaseEnv holds --database, so that a password in it stays off the
// command line, which every user of the host can read.
const databaseEnv = "AIM_DATABASE"

func providerCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "provider",
		Short: "Manage the providers, who own solutions (admins only)",
	}
	var req api.ProviderRequest
	add := &cobra.Command{
		Use:   "add NAME",
		Short: "Add a provider, or change one's details",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			p, err := c.PutProvider(cmd.Context(), args[0], req)
			if err != nil {
				return err
			}
			fmt.Fprintf(g.out, "provider %s saved; make it a token with: aim token create --provider %s --name NAME\n", p.Name, p.Name)
			return nil
		},
	}
	f := add.Flags()
	f.StringVar(&req.DisplayName, "display-name", "", "the provider's name as people read it")
	f.StringVar(&req.Email, "email", "", "whom to write to about the provider's solutions")
	f.StringVar(&req.Webhook, "webhook", "", "http(s) URL told of events on the provider's solutions")
	ls := &cobra.Command{
		Use:   "ls",
		Short: "List the providers",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			ps, err := c.Providers(cmd.Context())
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(g.out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tDISPLAY NAME\tEMAIL\tWEBHOOK\tCREATED")
			for _, p := range ps {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", p.Name, dash(p.DisplayName), dash(p.Email), dash(p.Webhook), when(p.CreatedAt, "-"))
			}
			return tw.Flush()
		},
	}
	rm := &cobra.Command{
		Use:   "rm NAME",
		Short: "Remove a provider and its tokens (once it owns no solution)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			if err := c.DeleteProvider(cmd.Context(), args[0]); err != nil {
				return err
			}
			fmt.Fprintf(g.out, "removed provider %s and its tokens\n", args[0])
			return nil
		},
	}
	cmd.AddCommand(add, ls, rm, webhookCmd(g))
	return cmd
}

func tokenCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Manage API tokens (admins: every token; providers: their own)",
	}
	cmd.AddCommand(tokenCreateCmd(g), tokenLsCmd(g), tokenRevokeCmd(g))
	return cmd
}

func tokenCreateCmd(g *globals) *cobra.Command {
	var req api.TokenRequest
	cmd := &cobra.Command{
		Use:   "create",
		Short: "Create an API token and print its secret, once",
		Long: `Create an API token and print its secret, once: aim keeps only its hash.

  aim token create --provider acme --name laptop --expires 90d
  aim token create --role admin --name ops
  aim token create --role visitor --email ana@example.com --groups staff,beta

A provider's token creates tokens for its own provider only, and none that
outlives it. --expires takes days (90d) or Go durations (12h, 1d12h).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if req.Expires != "" {
				if _, err := api.ParseDuration(req.Expires); err != nil {
					return fmt.Errorf("--expires: %w", err)
				}
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			nt, err := c.CreateToken(cmd.Context(), req)
			if err != nil {
				return err
			}
			fmt.Fprintln(g.out, nt.Secret)
			fmt.Fprintf(g.errOut, "created token %s%s: %s, expires %s.\nThe secret above is not shown again: store it now (the CLI reads it from --token or $AIM_TOKEN).\n",
				nt.Token.ID, quoted(nt.Token.Name), tokenFor(nt.Token), when(nt.Token.ExpiresAt, "never"))
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&req.Provider, "provider", "", "a provider token for this provider")
	f.StringVar(&req.Role, "role", "", "admin, provider or visitor (default: provider with --provider, or for a provider asking)")
	f.StringVar(&req.Email, "email", "", "with --role visitor: the person's e-mail address")
	f.StringSliceVar(&req.Groups, "groups", nil, "with --role visitor: the person's groups, comma-separated")
	f.StringVar(&req.Name, "name", "", "what the token is for, e.g. laptop or ci")
	f.StringVar(&req.Expires, "expires", "", "how long the token works, e.g. 90d or 12h (default: never; for a provider, as long as its own token)")
	return cmd
}

func tokenLsCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "ls",
		Short: "List API tokens (never their secrets)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			ts, err := c.Tokens(cmd.Context())
			if err != nil {
				return err
			}
			printTokens(g.out, ts, time.Now())
			return nil
		},
	}
}

func printTokens(w io.Writer, ts []api.TokenInfo, now time.Time) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tROLE\tFOR\tCREATED\tEXPIRES\tLAST USED\tREVOKED")
	for _, t := range ts {
		expires := when(t.ExpiresAt, "never")
		if !t.ExpiresAt.IsZero() && !now.Before(t.ExpiresAt) {
			expires += " (expired)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", t.ID, dash(t.Name), t.Role, dash(tokenSubject(t)),
			when(t.CreatedAt, "-"), expires, when(t.LastUsedAt, "never"), when(t.RevokedAt, "-"))
	}
	tw.Flush()
}

func tokenRevokeCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "revoke ID",
		Short: "Stop a token from working, from now on",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			if err := c.RevokeToken(cmd.Context(), args[0]); err != nil {
				return err
			}
			fmt.Fprintf(g.out, "revoked token %s\n", args[0])
			return nil
		},
	}
}

func whoamiCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "whoami",
		Short: "Say whom the API token stands for",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			me, err := c.Me(cmd.Context())
			if err != nil {
				return err
			}
			if me.Role == "" {
				fmt.Fprintln(g.out, "an anonymous visitor: no API token was sent (set --token or AIM_TOKEN)")
				return nil
			}
			fmt.Fprintf(g.out, "Role:      %s\n", me.Role)
			for _, l := range [][2]string{{"Provider", me.Provider}, {"Email", me.Email}, {"Groups", strings.Join(me.Groups, ", ")}} {
				if l[1] != "" {
					fmt.Fprintf(g.out, "%-10s %s\n", l[0]+":", l[1])
				}
			}
			if me.TokenID != "" {
				fmt.Fprintf(g.out, "Token:     %s%s, expires %s\n", me.TokenID, quoted(me.TokenName), when(me.ExpiresAt, "never"))
			}
			return nil
		},
	}
}

// tokenSubject is whom a token is for: its provider, or a visitor's
// address and groups.
func tokenSubject(t api.TokenInfo) string {
	s := t.Provider + t.Email
	if len(t.Groups) > 0 {
		s = strings.TrimSpace(s + " [" + strings.Join(t.Groups, ",") + "]")
	}
	return s
}

// tokenFor says what a token is, as a sentence's object.
func tokenFor(t api.TokenInfo) string {
	a := "a "
	if t.Role == "admin" {
		a = "an "
	}
	if s := tokenSubject(t); s != "" {
		return a + t.Role + " token for " + s
	}
	return a + t.Role + " token"
}

func quoted(name string) string {
	if name == "" {
		return ""
	}
	return fmt.Sprintf(" (%q)", name)
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// when shows a time to the minute, in UTC so that every reader of a
// listing sees the same; zero shows as zero.
func when(t time.Time, zero string) string {
	if t.IsZero() {
		return zero
	}
	return t.UTC().Format("2006-01-02 15:04Z")
}
