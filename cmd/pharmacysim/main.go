// Command pharmacysim is a compounding pharmacy for development, compose and
// tests: it accepts signed SCRIPT NewRx and CancelRx on 127.0.0.1, answers
// Status (or Error), and sends RxFill callbacks signed with HMAC. Faults are
// chosen per run by flags; `pharmacysim -h` lists them.
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
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "pharmacysim:", err)
		os.Exit(1)
	}
}
