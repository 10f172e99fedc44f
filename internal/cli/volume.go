package cli

import (
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/aimhub/aim/internal/solution"
)

// printVolumes writes a status's storage lines: what is kept, and how
// much of it is used (on Docker the size is advisory).
func printVolumes(w io.Writer, vols []solution.Volume) {
	if len(vols) == 0 {
		fmt.Fprintln(w, "Storage:     no volumes: what it writes is lost when it sleeps or restarts (aim.yaml's volumes: keeps a directory)")
		return
	}
	for i, v := range vols {
		label := "Storage:     "
		if i > 0 {
			label = "             "
		}
		fmt.Fprintf(w, "%svolume %s: %s used of %s (%s)\n", label, v.Name, usedSize(v.Used), v.Size, v.Ref)
	}
}

// usedSize is a volume's use as a person reads it.
func usedSize(n int64) string {
	if n < 0 {
		return "unknown"
	}
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	f, i := float64(n)/unit, 0
	for ; f >= unit && i < 3; i++ {
		f /= unit
	}
	return fmt.Sprintf("%.1f %siB", f, "KMGT"[i:i+1])
}

func volumeCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "volume",
		Short: "List, export and import a solution's volumes",
		Long: `List, export and import a solution's volumes (aim.yaml's volumes:) as tar streams,
e.g. for a backup (docs/operations.md):

  aim sleep shop && aim volume export shop uploads > uploads.tar
  aim volume import shop uploads < uploads.tar   # the solution asleep`,
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "ls NAME",
		Short: "List a solution's volumes and what they hold",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			vols, err := c.Volumes(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(g.out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "VOLUME\tUSED\tSIZE\tREF")
			for _, v := range vols {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", v.Name, usedSize(v.Used), v.Size, v.Ref)
			}
			return tw.Flush()
		},
	}, &cobra.Command{
		Use:   "export NAME VOLUME",
		Short: "Write a volume's files to standard output as a tar stream",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			return c.ExportVolume(cmd.Context(), args[0], args[1], g.out)
		},
	}, &cobra.Command{
		Use:   "import NAME VOLUME",
		Short: "Add the files of a tar stream on standard input to a volume (the solution asleep)",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			return c.ImportVolume(cmd.Context(), args[0], args[1], cmd.InOrStdin())
		},
	})
	return cmd
}
