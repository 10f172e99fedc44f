package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/aimhub/aim/internal/scaffold"
)

func initCmd(g *globals) *cobra.Command {
	var o scaffold.Options
	cmd := &cobra.Command{
		Use:   "init DIR",
		Short: "Write a small solution that follows the packaging standard (templates: go, python, static)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			files, err := scaffold.Write(args[0], o)
			if err != nil {
				return err
			}
			for _, f := range files {
				fmt.Fprintln(g.out, f)
			}
			fmt.Fprintf(g.errOut, "==> next: aim check %s, then aim deploy %s\n", args[0], args[0])
			return nil
		},
	}
	cmd.Flags().StringVar(&o.Template, "template", "go", "go, python or static")
	cmd.Flags().StringVar(&o.Name, "name", "", "the solution's name (default: DIR's base name, as a DNS label)")
	return cmd
}
