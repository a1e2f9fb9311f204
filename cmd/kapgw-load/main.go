// Command kapgw-load seeds a kapgw store and a peer FHIR server with the
// same Observations and measures requests per second and latency
// percentiles of a read and a search against either, on loopback only.
//
//	kapgw-load seed --data-dir DIR --peer URL --out FILE [--observations N]
//	kapgw-load run --url URL [--seed FILE] [--bare [--bare-process]] [-c N] [-d DUR] [-n N] [--rate R]
//
// docs/performance.md ("Partner API") has the commands and the figures.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	err := run(ctx, os.Args, os.Stdout)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "kapgw-load:", err)
		os.Exit(1)
	}
}

// run dispatches to a subcommand.
func run(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) < 2 {
		return fmt.Errorf("usage: kapgw-load seed|run [flags]")
	}
	switch args[1] {
	case "seed":
		return runSeed(ctx, args[2:], stdout)
	case "run":
		return runLoad(ctx, args[2:], stdout)
	case "serve-bare":
		return runServeBare(ctx, args[2:], stdout)
	}
	return fmt.Errorf("unknown command %q (seed, run, serve-bare)", args[1])
}
