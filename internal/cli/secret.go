package cli

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/aimhub/aim/internal/api"
)

func secretCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "secret",
		Short: "Set, list and remove a solution's secrets, which aim.yaml names as env: {KEY: {secret: NAME}}",
	}
	cmd.AddCommand(secretSetCmd(g), secretLsCmd(g), secretRmCmd(g))
	return cmd
}

func secretSetCmd(g *globals) *cobra.Command {
	var fromFile string
	cmd := &cobra.Command{
		Use:   "set NAME KEY",
		Short: "Set secret KEY of solution NAME, its value read from stdin (one trailing newline dropped) or --from-file (as it is)",
		Long: `Set secret KEY of solution NAME. The value is read from stdin, without one
trailing newline, or from --from-file byte for byte; never from the command
line, where other users of the host see it. A solution that serves and uses
the secret is restarted to take the new value.`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			val, err := secretValue(cmd.InOrStdin(), fromFile)
			if err != nil {
				return err
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			ch, err := c.SetSecret(cmd.Context(), args[0], args[1], val)
			if err != nil {
				return err
			}
			fmt.Fprintf(g.out, "secret %s of %s set\n", args[1], args[0])
			if len(ch.Restarted) > 0 {
				fmt.Fprintf(g.out, "restarted with it: %s\n", strings.Join(ch.Restarted, ", "))
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&fromFile, "from-file", "", "read the value from this file, as it is")
	return cmd
}

// secretValue reads a secret's value from file, or from in without one
// trailing newline (what `echo` and a typed line end with).
func secretValue(in io.Reader, file string) ([]byte, error) {
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("--from-file: %w", err)
		}
		if len(b) > api.MaxSecret {
			return nil, fmt.Errorf("--from-file %s: %d bytes; a secret is at most %d", file, len(b), api.MaxSecret)
		}
		return b, nil
	}
	if f, ok := in.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			fmt.Fprintln(os.Stderr, "value (then Enter and Ctrl-D):")
		}
	}
	b, err := io.ReadAll(io.LimitReader(in, api.MaxSecret+2))
	if err != nil {
		return nil, fmt.Errorf("reading the value from stdin: %w", err)
	}
	b = bytes.TrimSuffix(b, []byte("\n"))
	b = bytes.TrimSuffix(b, []byte("\r"))
	if len(b) == 0 {
		return nil, fmt.Errorf("the value on stdin is empty (pipe it in, or use --from-file)")
	}
	if len(b) > api.MaxSecret {
		return nil, fmt.Errorf("the value on stdin is more than %d bytes, the most a secret holds", api.MaxSecret)
	}
	return b, nil
}

func secretLsCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "ls NAME",
		Short: "List the secrets of solution NAME: names, when set, and the components that use them (never values)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			list, err := c.Secrets(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(g.out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "SECRET\tSET\tUSED BY")
			for _, s := range list {
				fmt.Fprintf(tw, "%s\t%s\t%s\n", s.Name, when(s.SetAt, "-"), dash(strings.Join(s.UsedBy, ",")))
			}
			return tw.Flush()
		},
	}
}

func secretRmCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "rm NAME KEY",
		Short: "Remove secret KEY of solution NAME (refused while the serving solution uses it)",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			if err := c.DeleteSecret(cmd.Context(), args[0], args[1]); err != nil {
				return err
			}
			fmt.Fprintf(g.out, "secret %s of %s removed\n", args[1], args[0])
			return nil
		},
	}
}
