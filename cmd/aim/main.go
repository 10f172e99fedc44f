// Command aim is the single binary of aim: the platform (aim serve) and
// the providers' client (deploy, ls, status, logs, rm).
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/aimhub/aim/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Main(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
