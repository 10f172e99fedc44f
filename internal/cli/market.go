package cli

import (
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
)

// The marketplace's commands: a solution's history and rollback, its
// usage, the inquiries visitors sent, and a provider's webhook.

func historyCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "history NAME",
		Short: "List a solution's generations: when, by whom, images by digest, outcome",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			gens, err := c.History(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(g.out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "GENERATION\tDEPLOYED\tBY\tOUTCOME\tIMAGES")
			for _, x := range gens {
				var imgs []string
				for comp, ref := range x.Images {
					d := x.Digests[comp]
					if len(d) > 19 {
						d = d[:19]
					}
					imgs = append(imgs, fmt.Sprintf("%s=%s@%s", comp, ref, dash(d)))
				}
				outcome := string(x.Outcome)
				if x.RollbackOf != 0 {
					outcome += fmt.Sprintf(" (rollback to %d)", x.RollbackOf)
				}
				if x.Reason != "" && x.Outcome == "failed" {
					outcome += ": " + firstLine(x.Reason)
				}
				fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\n", x.Generation, when(x.CreatedAt, "-"), dash(x.DeployedBy), outcome, strings.Join(imgs, " "))
			}
			return tw.Flush()
		},
	}
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	if len(s) > 80 {
		s = s[:80] + "…"
	}
	return s
}

func rollbackCmd(g *globals) *cobra.Command {
	var to int64
	cmd := &cobra.Command{
		Use:   "rollback NAME",
		Short: "Serve an earlier generation of a solution again, without a build",
		Long: `Serve an earlier generation of a solution again: the one that served before the
current one, or --to N (aim history lists them). It runs that generation's images
as a new generation, without a build, and switches to it once it answers; if it
cannot (its images are gone, it never served), the current one goes on serving.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			res, err := c.Rollback(cmd.Context(), args[0], to)
			if err != nil {
				return err
			}
			fmt.Fprintf(g.out, "%s serves generation %d again as generation %d, at %s (took %.1fs)\n",
				args[0], res.ServedAgain, res.Result.Generation, res.Result.URL, res.Seconds)
			return nil
		},
	}
	cmd.Flags().Int64Var(&to, "to", 0, "the generation to serve again (default: the one before the current)")
	return cmd
}

func usageCmd(g *globals) *cobra.Command {
	var since string
	cmd := &cobra.Command{
		Use:   "usage NAME",
		Short: "Show a solution's use per day: page views, distinct visitors, API calls, errors, wakes",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			days, err := c.Usage(cmd.Context(), args[0], since)
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(g.out, 0, 4, 2, ' ', tabwriter.AlignRight)
			fmt.Fprintln(tw, "DAY\tVIEWS\tVISITORS\tAPI\tERRORS\tWAKES\tWAKE TIME\tLAST VISIT\t")
			var tv, tu, ta, te, tw2 int64
			for _, d := range days {
				fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%s\t%s\t\n", d.Day, d.Views, d.Visitors, d.API, d.Errors, d.Wakes,
					d.WakeTime.Round(time.Millisecond), when(d.LastVisit, "-"))
				tv, tu, ta, te, tw2 = tv+d.Views, tu+d.Visitors, ta+d.API, te+d.Errors, tw2+d.Wakes
			}
			fmt.Fprintf(tw, "total\t%d\t%d\t%d\t%d\t%d\t\t\t\n", tv, tu, ta, te, tw2)
			if err := tw.Flush(); err != nil {
				return err
			}
			fmt.Fprintln(g.out, "(visitors are distinct per day; the total adds the days. Counts are written every 10 s.)")
			return nil
		},
	}
	cmd.Flags().StringVar(&since, "since", "30d", "how far back, e.g. 7d or 12h")
	return cmd
}

func inquiriesCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "inquiries [NAME]",
		Short: "Read the inquiries visitors sent about your solutions (or one)",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			name := ""
			if len(args) == 1 {
				name = args[0]
			}
			qs, err := c.Inquiries(cmd.Context(), name)
			if err != nil {
				return err
			}
			if len(qs) == 0 {
				fmt.Fprintln(g.out, "no inquiries")
			}
			for _, q := range qs {
				org := ""
				if q.Organisation != "" {
					org = ", " + q.Organisation
				}
				fmt.Fprintf(g.out, "%s  %s  from %s <%s>%s  (webhook: %s)\n", when(q.CreatedAt, "-"), q.Solution, q.Name, q.Email, org, delivery(q.Delivery, q.LastError))
				for _, l := range strings.Split(q.Message, "\n") {
					fmt.Fprintln(g.out, "    "+l)
				}
			}
			return nil
		},
	}
}

func delivery(d, lastErr any) string {
	s := fmt.Sprint(d)
	if e := fmt.Sprint(lastErr); e != "" && s != "delivered" {
		s += ": " + firstLine(e)
	}
	return s
}

func webhookCmd(g *globals) *cobra.Command {
	var rotate bool
	cmd := &cobra.Command{
		Use:   "webhook PROVIDER URL",
		Short: "Set where a provider's inquiries are POSTed (signed); \"\" removes it",
		Long: `Set the URL aim POSTs each inquiry about the provider's solutions to, as JSON
signed with HMAC-SHA256 in the Aim-Signature header ("t=<unix time>,v1=<hex of
HMAC(secret, "<t>.<body>")>"), retried with back-off until it answers 2xx. The
secret is printed here; --rotate-secret makes a new one. An address on loopback
or link-local (the cloud's metadata address among them) is refused.`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			ans, err := c.SetWebhook(cmd.Context(), args[0], args[1], rotate)
			if err != nil {
				return err
			}
			if ans.Webhook == "" {
				fmt.Fprintf(g.out, "provider %s has no webhook now\n", args[0])
				return nil
			}
			fmt.Fprintf(g.out, "inquiries about %s's solutions go to %s\nsigning secret: %s\n", args[0], ans.Webhook, ans.Secret)
			return nil
		},
	}
	cmd.Flags().BoolVar(&rotate, "rotate-secret", false, "make a new signing secret")
	return cmd
}
