// Command pause is the sandbox ("pause") container of every pod: it holds
// the pod's namespaces and does nothing until the runtime stops it. No
// image can be pulled here, so the cluster builds its own, FROM scratch.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	// As PID 1 of the pod it must also reap zombies of processes that
	// share its PID namespace; SIGCHLD is ignored so the kernel reaps them.
	signal.Ignore(syscall.SIGCHLD)
	<-sig
}
