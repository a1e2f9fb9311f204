package main

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/kapgw/kapgw/internal/config"
	"github.com/kapgw/kapgw/internal/secrets"
	"github.com/kapgw/kapgw/internal/store"
	"github.com/kapgw/kapgw/pharmacy/rules"
)

const rxUsage = `kapgw rx: e-prescriptions

  kapgw rx blocked [flags]                  prescriptions a rule keeps from the pharmacy, with findings
  kapgw rx track [flags] PRESCRIPTION_ID    the timeline of a prescription (MedicationRequest id or
                                            KAP prescription id), with trace ids
  kapgw rx public-key [flags]               the prescription signing public key (PEM), for the pharmacy

Flags are those of kapgw serve (--data-dir, --database-url, --vault-*, ...).
`

// runRx runs the rx subcommands against the server's database and secrets.
func runRx(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	sub, args, done, err := subcommand(args, "rx", rxUsage, stdout)
	if done {
		return err
	}
	cfg, rest, err := loadRxConfig(sub, args, getenv, stderr)
	if err != nil {
		return err
	}
	switch {
	case sub == "blocked" && len(rest) == 0:
		return withRxStore(ctx, cfg.DataDir, cfg.DatabaseURL, func(st *store.Store) error { return rxBlocked(ctx, st, stdout) })
	case sub == "track" && len(rest) == 1:
		return withRxStore(ctx, cfg.DataDir, cfg.DatabaseURL, func(st *store.Store) error { return rxTrack(ctx, st, rest[0], stdout) })
	case sub == "public-key" && len(rest) == 0:
		return rxPublicKey(ctx, cfg, stdout, stderr)
	}
	fmt.Fprint(stderr, rxUsage)
	return fmt.Errorf("%w: rx %s: bad arguments", errUsage, sub)
}

// loadRxConfig reads the serve settings; what is left is the subcommand's
// arguments.
func loadRxConfig(sub string, args []string, getenv func(string) string, stderr io.Writer) (config.Config, []string, error) {
	cfg, rest, err := config.Load("rx "+sub, args, getenv, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return cfg, nil, fmt.Errorf("%w: rx %s", errUsage, sub)
	}
	if err != nil {
		return cfg, nil, fmt.Errorf("invalid configuration:\n%w", err)
	}
	return cfg, rest, nil
}

func withRxStore(ctx context.Context, dataDir, databaseURL string, fn func(*store.Store) error) error {
	return withRegistry(ctx, partnerFlags{dataDir: dataDir, databaseURL: databaseURL}, fn)
}

func rxBlocked(ctx context.Context, st *store.Store, stdout io.Writer) error {
	blocked, err := st.RxBlocked(ctx)
	if err != nil {
		return err
	}
	w := tabwriter.NewWriter(stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(w, "ORDER\tPRESCRIPTION\tEPISODE\tCHECKED\tRULE SET\tSEVERITY\tCODE\tFIELD\tMESSAGE")
	for _, b := range blocked {
		var findings []rules.Finding
		if err := json.Unmarshal(b.Findings, &findings); err != nil {
			return fmt.Errorf("findings of %s: %w", b.OrderID, err)
		}
		for _, f := range findings {
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", b.OrderID, b.PrescriptionID, b.EpisodeID,
				b.CheckedAt.Format(time.RFC3339), b.RuleSet, f.Severity, f.Code, f.Expression, f.Message)
		}
	}
	return w.Flush()
}

func rxTrack(ctx context.Context, st *store.Store, id string, stdout io.Writer) error {
	steps, err := st.RxTimeline(ctx, id)
	if err != nil {
		return err
	}
	if len(steps) == 0 {
		return fmt.Errorf("prescription %s: %w", id, store.ErrNotFound)
	}
	w := tabwriter.NewWriter(stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(w, "AT\tORDER\tSTEP\tMESSAGE\tMESSAGE ID\tCODE\tDETAIL\tTRACE ID")
	for _, s := range steps {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", s.At.Format(time.RFC3339Nano), s.OrderID, s.Step,
			dash(s.Message), dash(s.MessageID), dash(s.Code), dash(s.Detail), dash(s.TraceID))
	}
	return w.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// rxPublicKey prints the public half of the prescription signing key as a
// PKIX PEM block, the form cmd/pharmacysim -public-key reads.
func rxPublicKey(ctx context.Context, cfg config.Config, stdout, stderr io.Writer) error {
	log := newLogger(stderr, cfg.LogLevel)
	var b *secrets.Backend
	var err error
	if cfg.Vault.Addr == "" {
		b, err = secrets.NewDevBackend(ctx, log, cfg.DataDir)
	} else {
		var c *secrets.Client
		if c, err = secrets.Connect(ctx, log, cfg.Vault); err == nil {
			b, err = secrets.NewVaultBackend(ctx, log, c, time.Now)
		}
	}
	if err != nil {
		return fmt.Errorf("secrets: %w", err)
	}
	pub, err := b.Signers.Rx.PublicKey(ctx)
	if err != nil {
		return fmt.Errorf("rx signing key: %w", err)
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return fmt.Errorf("rx signing key: %w", err)
	}
	return pem.Encode(stdout, &pem.Block{Type: "PUBLIC KEY", Bytes: der})
}
