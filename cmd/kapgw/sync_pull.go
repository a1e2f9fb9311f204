package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/riverqueue/river"

	"github.com/kapgw/kapgw/internal/config"
	"github.com/kapgw/kapgw/internal/jobs"
	"github.com/kapgw/kapgw/internal/store"
	kapsync "github.com/kapgw/kapgw/internal/sync"
	"github.com/kapgw/kapgw/internal/telemetry"
)

const syncPullUsage = `kapgw sync pull: pulls from partner EHRs

  kapgw sync pull enable --partner ID --type T [--type T ...] [--interval 5m]
  kapgw sync pull disable --partner ID
  kapgw sync pull status [--partner ID]

The partner must have a push destination (kapgw sync destination add): a
pull uses its base URL, credentials and limits. Types are among
AllergyIntolerance, Condition, MedicationRequest, MedicationStatement and
Observation (--type takes one, or several comma-separated). kapgw serve
polls each enabled partner every --interval (at least 10s) for the patients
pushed to it, from where the last poll stopped. Enabling again changes the
types and interval. Each takes --data-dir / KAPGW_DATA_DIR and
--database-url / KAPGW_DATABASE_URL like kapgw serve.
`

// minPullInterval keeps a pull from hammering a partner.
const minPullInterval = 10 * time.Second

// pullFlags are the flags of the sync pull subcommands.
type pullFlags struct {
	store    partnerFlags // data-dir and database-url
	partner  string
	types    listFlag
	interval time.Duration
}

// runSyncPull runs `kapgw sync pull ...`.
func runSyncPull(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	sub, args, done, err := subcommand(args, "sync pull", syncPullUsage, stdout)
	if done {
		return err
	}
	var f pullFlags
	fs := flag.NewFlagSet("sync pull "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&f.store.dataDir, "data-dir", or(getenv("KAPGW_DATA_DIR"), "./kapgw-data"), "directory of the embedded SQLite database")
	fs.StringVar(&f.store.databaseURL, "database-url", getenv("KAPGW_DATABASE_URL"), "PostgreSQL URL; empty uses SQLite under --data-dir")
	fs.StringVar(&f.partner, "partner", "", "the partner's client id")
	fs.Var(&f.types, "type", "a resource type to pull (repeat, or comma-separate)")
	fs.DurationVar(&f.interval, "interval", 5*time.Minute, "time between polls")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: sync pull %s: %v", errUsage, sub, err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: sync pull %s: unexpected arguments", errUsage, sub)
	}
	switch sub {
	case "enable":
		c, err := newPull(f)
		if err != nil {
			return err
		}
		return withRegistry(ctx, f.store, func(st *store.Store) error { return syncPullEnable(ctx, st, c, stdout) })
	case "disable":
		if f.partner == "" {
			return fmt.Errorf("%w: sync pull disable needs --partner", errUsage)
		}
		return withRegistry(ctx, f.store, func(st *store.Store) error { return syncPullDisable(ctx, st, f.partner, stdout) })
	case "status":
		return withRegistry(ctx, f.store, func(st *store.Store) error { return syncPullStatus(ctx, st, f.partner, stdout) })
	}
	fmt.Fprint(stderr, syncPullUsage)
	return fmt.Errorf("%w: unknown sync pull command %q", errUsage, sub)
}

// newPull checks the flags of sync pull enable; every problem is reported
// at once.
func newPull(f pullFlags) (store.PullConfig, error) {
	var errs []error
	if !validClientID.MatchString(f.partner) {
		errs = append(errs, errors.New("--partner must match [A-Za-z0-9._-]{1,64}"))
	}
	var types []string
	for _, v := range f.types {
		for _, t := range strings.Split(v, ",") {
			if t = strings.TrimSpace(t); t == "" || slices.Contains(types, t) {
				continue
			}
			if !slices.Contains(kapsync.PullTypes, t) {
				errs = append(errs, fmt.Errorf("--type %q: pulls are for %s", t, strings.Join(kapsync.PullTypes, ", ")))
			}
			types = append(types, t)
		}
	}
	if len(types) == 0 {
		errs = append(errs, errors.New("--type is required"))
	}
	if f.interval < minPullInterval {
		errs = append(errs, fmt.Errorf("--interval must be at least %s", minPullInterval))
	}
	if err := errors.Join(errs...); err != nil {
		return store.PullConfig{}, fmt.Errorf("%w: %w", errUsage, err)
	}
	return store.PullConfig{PartnerID: f.partner, Types: types, Interval: f.interval}, nil
}

// syncPullEnable saves the pull and inserts its job in the same
// transaction (the job is unique per partner, so enabling again keeps one).
func syncPullEnable(ctx context.Context, st *store.Store, c store.PullConfig, stdout io.Writer) error {
	q, err := cliQueue(ctx, st)
	if err != nil {
		return err
	}
	err = st.PutPull(ctx, c, func(ctx context.Context, tx store.Tx) error {
		return q.InsertTx(ctx, tx, kapsync.PullArgs{PartnerID: c.PartnerID}, kapsync.PullInsertOpts())
	})
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("%w: partner %s has no destination (kapgw sync destination add)", errUsage, c.PartnerID)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s: pull of %s every %s enabled\n", c.PartnerID, strings.Join(c.Types, ", "), c.Interval)
	return nil
}

// syncPullDisable stops a partner's pull: its job ends at its next run.
func syncPullDisable(ctx context.Context, st *store.Store, partnerID string, stdout io.Writer) error {
	c, err := st.Pull(ctx, partnerID)
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("%w: partner %s has no pull", errUsage, partnerID)
	}
	if err != nil {
		return err
	}
	c.Disabled = true
	if err := st.PutPull(ctx, c, nil); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s: pull disabled\n", partnerID)
	return nil
}

// cliQueue is a job queue that only inserts, for the admin commands.
func cliQueue(ctx context.Context, st *store.Store) (*jobs.Queue, error) {
	if err := jobs.Migrate(ctx, st); err != nil {
		return nil, fmt.Errorf("migrate: %w", err)
	}
	q, err := jobs.New(st, slog.New(slog.DiscardHandler), jobs.Config{})
	if err != nil {
		return nil, fmt.Errorf("job queue: %w", err)
	}
	return q, nil
}

// syncPullStatus prints each pull and, per type, how many patients it
// covers, what it stored and reported, and the latest cursor.
func syncPullStatus(ctx context.Context, st *store.Store, partnerID string, stdout io.Writer) error {
	pulls, err := st.Pulls(ctx)
	if err != nil {
		return err
	}
	cursors, err := st.Cursors(ctx, partnerID)
	if err != nil {
		return err
	}
	w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "PARTNER\tSTATUS\tTYPE\tINTERVAL\tPATIENTS\tPULLED\tUNMATCHED\tCURSOR\tLAST_PULL")
	for _, p := range pulls {
		if partnerID != "" && p.PartnerID != partnerID {
			continue
		}
		status := "enabled"
		if p.Disabled {
			status = "disabled"
		}
		for _, typ := range p.Types {
			var patients, pulled, unmatched int
			cursor, last := "-", time.Time{}
			for _, c := range cursors {
				if c.PartnerID != p.PartnerID || c.Type != typ {
					continue
				}
				patients, pulled, unmatched = patients+1, pulled+c.Pulled, unmatched+c.Unmatched
				if c.Cursor != "" && (cursor == "-" || c.Cursor > cursor) {
					cursor = c.Cursor
				}
				if c.UpdatedAt.After(last) {
					last = c.UpdatedAt
				}
			}
			lastPull := "-"
			if !last.IsZero() {
				lastPull = last.UTC().Format(time.RFC3339)
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%d\t%d\t%d\t%s\t%s\n", p.PartnerID, status, typ, p.Interval, patients, pulled, unmatched, cursor, lastPull)
		}
	}
	return w.Flush()
}

// addPullWorker adds the pull worker to workers: it polls the partners
// with a pull through their destinations (held to public addresses unless
// cfg.Sync.AllowLoopback, like the push), traced, every request in xlog.
func addPullWorker(workers *river.Workers, log *slog.Logger, cfg config.Config, st *store.Store, xlog kapsync.ExchangeLog, sec kapsync.Resolver, tel *telemetry.Telemetry) {
	dests := guardedDestinations{Store: st, allowLoopback: cfg.Sync.AllowLoopback}
	clients := kapsync.NewWorker(dests, xlog, sec, log, time.Now, syncBackoff, syncHolder()).WithTransport(tel.Transport)
	river.AddWorker(workers, kapsync.NewPullWorker(dests, clients, xlog, log, time.Now, kapsync.PullOptions{SystemBase: cfg.SystemBase}))
}

// enqueuePulls makes sure every enabled pull has its job (a pull enabled
// while no gateway ran, or whose job was lost, starts again).
func enqueuePulls(ctx context.Context, st *store.Store, q *jobs.Queue) error {
	err := st.EnqueuePulls(ctx, func(ctx context.Context, tx store.Tx, c store.PullConfig) error {
		return q.InsertTx(ctx, tx, kapsync.PullArgs{PartnerID: c.PartnerID}, kapsync.PullInsertOpts())
	})
	if err != nil {
		return fmt.Errorf("enqueue pulls: %w", err)
	}
	return nil
}
