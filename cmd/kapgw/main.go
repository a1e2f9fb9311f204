// Command kapgw is the KAP interoperability gateway: it accepts KAP episodes
// from the clinic platform, maps them to FHIR R4 and serves them to partner
// EHRs. See README.md.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args, os.Getenv, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "kapgw: %v\n", err)
		os.Exit(exitCode(err))
	}
}
