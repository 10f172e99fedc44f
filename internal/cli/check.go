package cli

import (
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/aimhub/aim/internal/check"
	"github.com/aimhub/aim/internal/check/dockercheck"
	"github.com/aimhub/aim/internal/runtime/docker"
)

// errCheckFailed makes aim exit 1 when a rule fails; the report has said
// which.
var errCheckFailed = errors.New("the solution does not follow the packaging standard")

func checkCmd(g *globals) *cobra.Command {
	var o dockercheck.Options
	var asJSON, quiet bool
	cmd := &cobra.Command{
		Use:   "check [DIR]",
		Short: "Check a solution (DIR/aim.yaml) or an image (--image) against the packaging standard",
		Long: `check runs the solution on the local Docker engine, isolated on a network with no
route out, and reports for each rule of the packaging standard (docs/packaging.md)
whether it passes, warns or fails, with the evidence. It removes every container
and network it started, also when interrupted. The exit status is 1 when a rule fails.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if o.Image == "" {
				o.Dir = "."
				if len(args) == 1 {
					o.Dir = args[0]
				}
			} else if len(args) > 0 {
				return errors.New("use either DIR or --image")
			}
			if !quiet {
				o.Progress = func(s string) { fmt.Fprintln(g.errOut, "==>", s) }
			}
			ctx := cmd.Context()
			d, err := docker.New(ctx, docker.Options{Prefix: "aim-check"})
			if err != nil {
				return err
			}
			defer d.Close()
			rep, err := dockercheck.Run(ctx, d.Client(), d, o)
			if err != nil {
				if ctx.Err() != nil {
					return fmt.Errorf("check interrupted; its containers and network are removed: %w", err)
				}
				return err
			}
			if asJSON {
				err = check.WriteJSON(g.out, rep)
			} else {
				err = check.WriteText(g.out, rep)
			}
			if err != nil {
				return err
			}
			if rep.Failed() {
				return errCheckFailed
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Image, "image", "", "check this image as a one-component solution")
	f.BoolVar(&asJSON, "json", false, "print the report as JSON")
	f.BoolVarP(&quiet, "quiet", "q", false, "print only the report")
	f.DurationVar(&o.StartTimeout, "start-timeout", 60*time.Second, "how long a component may take to answer on port 8080")
	f.DurationVar(&o.StopTimeout, "stop-timeout", 10*time.Second, "how long a component may take to exit after SIGTERM")
	return cmd
}
