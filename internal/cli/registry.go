package cli

import (
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"
)

func registryCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "registry",
		Short: "Log in to and out of the container registries your image: components pull from",
		Long: `Log in to a private container registry once, and aim pulls the images your
solutions name from it with that login: on one host for image: components and
aim deploy --image, on Kubernetes through an imagePullSecret of each solution.
A login is yours (your provider's, or the admins' for an admin token): it pulls
the images of your own solutions only, never another provider's. aim.yaml holds
no credentials.`,
	}
	cmd.AddCommand(registryLoginCmd(g), registryLsCmd(g), registryLogoutCmd(g))
	return cmd
}

func registryLoginCmd(g *globals) *cobra.Command {
	var username string
	var stdin bool
	cmd := &cobra.Command{
		Use:   "login HOST --username USER --password-stdin",
		Short: "Keep your login to registry HOST (ghcr.io, docker.io, registry.example.com:5000), the password read from stdin",
		Long: `Keep your login to registry HOST. The password, or the token the registry
takes as one, is read from stdin without one trailing newline (--password-stdin),
never from the command line, where other users of the host see it. aim keeps it
sealed and never shows it again; log in again to change it.`,
		Example: "  echo \"$GHCR_TOKEN\" | aim registry login ghcr.io --username acme-bot --password-stdin",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if username == "" {
				return fmt.Errorf("--username is required")
			}
			if !stdin {
				return fmt.Errorf("--password-stdin is required: the password is read from stdin, never from the command line")
			}
			pw, err := secretValue(cmd.InOrStdin(), "")
			if err != nil {
				return fmt.Errorf("the password: %w", err)
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			l, err := c.LoginRegistry(cmd.Context(), args[0], username, string(pw))
			if err != nil {
				return err
			}
			fmt.Fprintf(g.out, "logged in to %s as %s\n", l.Host, l.Username)
			return nil
		},
	}
	cmd.Flags().StringVarP(&username, "username", "u", "", "the registry user")
	cmd.Flags().BoolVar(&stdin, "password-stdin", false, "read the password from stdin (required)")
	return cmd
}

func registryLsCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "ls",
		Short: "List your registry logins: hosts, users and when given (never passwords)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			list, err := c.RegistryLogins(cmd.Context())
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(g.out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "REGISTRY\tUSER\tSET")
			for _, l := range list {
				fmt.Fprintf(tw, "%s\t%s\t%s\n", l.Host, l.Username, when(l.SetAt, "-"))
			}
			return tw.Flush()
		},
	}
}

func registryLogoutCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "logout HOST",
		Short: "Remove your login to registry HOST (serving solutions keep the images they have)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			if err := c.LogoutRegistry(cmd.Context(), args[0]); err != nil {
				return err
			}
			fmt.Fprintf(g.out, "logged out of %s\n", args[0])
			return nil
		},
	}
}
