package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/riverqueue/river"

	"github.com/kapgw/kapgw/fhir"
	"github.com/kapgw/kapgw/internal/config"
	"github.com/kapgw/kapgw/internal/intake"
	"github.com/kapgw/kapgw/internal/jobs"
	"github.com/kapgw/kapgw/internal/store"
)

const usage = `kapgw: the KAP interoperability gateway

Usage:
  kapgw serve   [flags]   run the gateway (migrates the database first)
  kapgw migrate [flags]   create or upgrade the database schema, then exit
  kapgw partners ...      manage registered API clients (kapgw partners help)
  kapgw exchanges [flags] list the exchange log by trace, episode, partner, status (kapgw exchanges help)
  kapgw rx ...            blocked prescriptions, a prescription's timeline, the signing key (kapgw rx help)
  kapgw sync ...          partner destinations, push status, dead letters, replay (kapgw sync help)
  kapgw help              show this help

Flags (each also read from its environment variable):
`

// errUsage marks a command line that could not be understood.
var errUsage = errors.New("usage")

// run is the whole program: it parses args, builds every dependency in
// order and serves until ctx is cancelled.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	return runWith(ctx, args, getenv, stdout, stderr, hooks{})
}

// runWith is run with test-only hooks (see telemetry.go).
func runWith(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer, h hooks) error {
	if len(args) < 2 {
		printUsage(stderr)
		return fmt.Errorf("%w: a command is required", errUsage)
	}
	cmd, rest := args[1], args[2:]
	switch cmd {
	case "help", "-h", "--help", "-help":
		printUsage(stdout)
		return nil
	case "serve":
		return runServe(ctx, rest, getenv, stdout, stderr, h)
	case "migrate":
		return runMigrate(ctx, rest, getenv, stdout, stderr)
	case "partners":
		return runPartners(ctx, rest, getenv, stdout, stderr)
	case "exchanges":
		return runExchanges(ctx, rest, getenv, stdout, stderr)
	case "rx":
		return runRx(ctx, rest, getenv, stdout, stderr)
	case "sync":
		return runSync(ctx, rest, getenv, stdout, stderr)
	}
	printUsage(stderr)
	return fmt.Errorf("%w: unknown command %q", errUsage, cmd)
}

func printUsage(w io.Writer) {
	fmt.Fprint(w, usage)
	config.Usage(w)
}

// exitCode is 2 for command-line mistakes and 1 for everything else.
func exitCode(err error) int {
	if errors.Is(err, errUsage) || errors.Is(err, flag.ErrHelp) {
		return 2
	}
	return 1
}

// loadConfig parses a subcommand's flags; a bad configuration lists every
// problem.
func loadConfig(name string, args []string, getenv func(string) string, stderr io.Writer) (config.Config, error) {
	cfg, rest, err := config.Load(name, args, getenv, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return cfg, fmt.Errorf("%w: %s", errUsage, name)
	}
	if err != nil {
		return cfg, fmt.Errorf("invalid configuration:\n%w", err)
	}
	if len(rest) > 0 {
		return cfg, fmt.Errorf("%w: unexpected arguments after %s", errUsage, name)
	}
	return cfg, nil
}

func newLogger(w io.Writer, level string) *slog.Logger {
	var l slog.Level
	_ = l.UnmarshalText([]byte(level))
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: l}))
}

func runServe(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer, h hooks) error {
	cfg, err := loadConfig("serve", args, getenv, stderr)
	if err != nil {
		return err
	}
	log := newTracedLogger(stdout, cfg.LogLevel)

	tel, err := newTelemetry(ctx, getenv, h)
	if err != nil {
		return fmt.Errorf("telemetry: %w", err)
	}
	defer shutdownTelemetry(log, tel, cfg.ShutdownTimeout)
	log.InfoContext(ctx, "telemetry ready", "exporting", tel.Exporting, "sampler", tel.Sampler)

	sec, stopSecrets, err := openSecrets(ctx, log, cfg, tel)
	if err != nil {
		return fmt.Errorf("secrets: %w", err)
	}
	defer stopSecrets()
	// secretsSource resolves vault: refs; signers sign access tokens and
	// prescriptions (Transit in production). Pass them to the auth and
	// pharmacy constructors.
	secretsSource, signers := sec.Source, sec.Signers
	_, _ = secretsSource, signers
	dbURL, err := sec.Resolve(ctx, cfg.DatabaseURL)
	if err != nil {
		return fmt.Errorf("database url: %w", err)
	}

	st, err := openMigrated(ctx, store.Config{DataDir: cfg.DataDir, DatabaseURL: dbURL, Tracer: tel.TracerProvider})
	if err != nil {
		return err
	}
	defer st.Close()
	log.InfoContext(ctx, "store ready", "dialect", st.Dialect())
	if err := intake.PublishCodeSystems(ctx, st, cfg.SystemBase); err != nil {
		return err
	}
	xlog, err := newExchangeLog(ctx, log, sec, st)
	if err != nil {
		return err
	}
	defer xlog.Close()
	workers := river.NewWorkers()
	rx, err := newRx(cfg, st, secretsSource, signers.Rx, xlog.Journal(), workers)
	if err != nil {
		return fmt.Errorf("pharmacy: %w", err)
	}
	addSyncWorker(workers, log, cfg, st, xlog, sec, tel)
	addPullWorker(workers, log, cfg, st, xlog, sec, tel)
	queue, err := jobs.New(st, log, jobs.Config{Workers: workers, TracerProvider: tel.TracerProvider, RescueAfter: jobRescueAfter})
	if err != nil {
		return fmt.Errorf("job queue: %w", err)
	}
	rx.bind(queue)
	if err := enqueuePulls(ctx, st, queue); err != nil {
		return err
	}
	stopQueue, err := startQueue(ctx, log, queue, cfg.ShutdownTimeout)
	if err != nil {
		return err
	}
	defer stopQueue()

	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Addr, err)
	}
	defer ln.Close()
	gate, err := newGate(ctx, log, cfg.Auth, st, signers.Token, publicURL(cfg.Auth, ln), tel)
	if err != nil {
		return fmt.Errorf("auth: %w", err)
	}
	defer gate.close()

	aud, err := startAudit(ctx, log, cfg.Audit, st, xlog)
	if err != nil {
		return err
	}
	defer aud.stop()
	stopMetrics, err := startMetrics(ctx, log, cfg.MetricsAddr, tel.Metrics)
	if err != nil {
		return err
	}
	defer stopMetrics()
	handler := fhir.NewHandler(fhir.Options{
		Log:          log,
		Intake:       rx.intake(intake.New(st, time.Now, cfg.SystemBase)).WithOutbox(newOutbox(st, queue)),
		Reader:       st,
		Ready:        st,
		MaxBodyBytes: cfg.MaxBodyBytes,
		Now:          time.Now,
		Telemetry:    fhirTelemetry(tel),
		Auth:         gate.verifier,
		Tokens:       gate.issuer,
		RateLimits:   gate.limits,
		Pharmacy:     rx.fhirCallbacks(),
		Exchanges:    freshExchanges{Recorder: xlog, sync: aud.sync},
		Audit:        aud.api,
	})
	return serve(ctx, log, cfg, ln, handler)
}

// serve serves on ln until ctx is cancelled, then shuts down gracefully
// within cfg.ShutdownTimeout.
func serve(ctx context.Context, log *slog.Logger, cfg config.Config, ln net.Listener, h http.Handler) error {
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	log.InfoContext(ctx, "listening", "addr", ln.Addr().String())

	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	log.Info("stopped")
	return nil
}
