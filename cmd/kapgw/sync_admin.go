package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"regexp"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/kapgw/kapgw/internal/jobs"
	"github.com/kapgw/kapgw/internal/secrets"
	"github.com/kapgw/kapgw/internal/store"
	kapsync "github.com/kapgw/kapgw/internal/sync"
)

const syncUsage = `kapgw sync: pushes to partner EHRs

  kapgw sync destination add --partner ID --url FHIR_BASE_URL --auth smart|secret|mtls|none
                     [--token-url URL --client-id ID --key-ref REF [--key-id KID] [--scope S]]
                     [--tls-cert-ref REF --tls-key-ref REF] [--ca-ref REF]
                     [--types T,T] [--concurrency N] [--rate N/s] [--on-conflict resend|review]
                     [--sync-allow-loopback]
  kapgw sync status
  kapgw sync dead-letters [--all]
  kapgw sync replay ID
  kapgw sync pull enable|disable|status ...   pulls from partners (kapgw sync pull help)

The partner must be registered (kapgw partners add). URLs must be https and
resolve to public addresses; --sync-allow-loopback (tests and development,
and the gateway must run with it too) allows http on loopback and auth none.
--key-ref is the vault: or local: reference of the SMART private key (PEM)
or of the client secret. With --auth mtls the gateway presents the PEM
client certificate (chain) at --tls-cert-ref and its key at --tls-key-ref
(vault: references, re-read when rotated); --ca-ref names a PEM CA bundle
the partner's server must chain to (default: the system roots).
--on-conflict says what a 409 or 412 answer does: resend (re-read our
current state and send once more; a second conflict goes to review) or
review (a dead letter with reason review at once). Replaying a dead letter enqueues its delivery
again, once, and is recorded in the exchange log. Each takes --data-dir /
KAPGW_DATA_DIR and --database-url / KAPGW_DATABASE_URL like kapgw serve.
`

// syncFlags are every flag of the sync subcommands.
type syncFlags struct {
	store                                  partnerFlags // data-dir and database-url
	partner, url, auth, tokenURL, clientID string
	keyID, keyRef, scope, types, rate      string
	tlsCertRef, tlsKeyRef, caRef, conflict string
	concurrency                            int
	allowLoopback, all                     bool
}

func runSync(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	sub, args, done, err := subcommand(args, "sync", syncUsage, stdout)
	if done {
		return err
	}
	if sub == "pull" {
		return runSyncPull(ctx, args, getenv, stdout, stderr)
	}
	if sub == "destination" {
		if len(args) == 0 || args[0] != "add" {
			return fmt.Errorf("%w: sync destination needs add", errUsage)
		}
		sub, args = "destination add", args[1:]
	}
	var pos string // replay's id, before or after the flags
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		pos, args = args[0], args[1:]
	}
	f, err := parseSyncFlags(sub, args, getenv, stderr)
	if err != nil {
		return err
	}
	if pos == "" && len(f.rest) == 1 {
		pos = f.rest[0]
	} else if len(f.rest) > 0 {
		return fmt.Errorf("%w: sync %s: unexpected arguments", errUsage, sub)
	}
	switch sub {
	case "destination add":
		return withRegistry(ctx, f.store, func(st *store.Store) error { return syncAddDestination(ctx, f.syncFlags, st, stdout) })
	case "status":
		return withRegistry(ctx, f.store, func(st *store.Store) error { return syncStatus(ctx, st, stdout) })
	case "dead-letters":
		return withRegistry(ctx, f.store, func(st *store.Store) error { return syncDeadLetters(ctx, st, f.all, stdout) })
	case "replay":
		id, err := strconv.ParseInt(pos, 10, 64)
		if err != nil || id <= 0 {
			return fmt.Errorf("%w: sync replay needs a dead letter id", errUsage)
		}
		return withRegistry(ctx, f.store, func(st *store.Store) error { return syncReplay(ctx, st, id, stdout) })
	}
	fmt.Fprint(stderr, syncUsage)
	return fmt.Errorf("%w: unknown sync command %q", errUsage, sub)
}

type parsedSyncFlags struct {
	syncFlags
	rest []string
}

func parseSyncFlags(sub string, args []string, getenv func(string) string, stderr io.Writer) (parsedSyncFlags, error) {
	var f parsedSyncFlags
	fs := flag.NewFlagSet("sync "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&f.store.dataDir, "data-dir", or(getenv("KAPGW_DATA_DIR"), "./kapgw-data"), "directory of the embedded SQLite database")
	fs.StringVar(&f.store.databaseURL, "database-url", getenv("KAPGW_DATABASE_URL"), "PostgreSQL URL; empty uses SQLite under --data-dir")
	fs.StringVar(&f.partner, "partner", "", "the registered partner's client id")
	fs.StringVar(&f.url, "url", "", "the partner's FHIR base URL")
	fs.StringVar(&f.auth, "auth", "smart", "smart (SMART Backend Services), secret (OAuth client secret), mtls (client certificate) or none")
	fs.StringVar(&f.tokenURL, "token-url", "", "the partner's token URL")
	fs.StringVar(&f.clientID, "client-id", "", "our client id at the partner")
	fs.StringVar(&f.keyID, "key-id", "", "kid of the SMART key")
	fs.StringVar(&f.keyRef, "key-ref", "", "vault: or local: reference of the SMART key (PEM) or client secret")
	fs.StringVar(&f.scope, "scope", "", "scopes to request from the partner")
	fs.StringVar(&f.tlsCertRef, "tls-cert-ref", "", "vault: or local: reference of the PEM client certificate (auth mtls)")
	fs.StringVar(&f.tlsKeyRef, "tls-key-ref", "", "vault: or local: reference of the PEM client key (auth mtls)")
	fs.StringVar(&f.caRef, "ca-ref", "", "vault: or local: reference of the PEM CA bundle of the partner's server; empty: system roots")
	fs.StringVar(&f.conflict, "on-conflict", "resend", "what a 409 or 412 does: resend (once) or review (dead letter)")
	fs.StringVar(&f.types, "types", "", "resource types the partner wants, comma-separated; empty: all")
	fs.IntVar(&f.concurrency, "concurrency", 4, "concurrent requests to the partner")
	fs.StringVar(&f.rate, "rate", "10/s", "requests per second to the partner (N or N/s)")
	fs.BoolVar(&f.allowLoopback, "sync-allow-loopback", false, "allow a loopback URL, http and auth none (tests and development)")
	fs.BoolVar(&f.all, "all", false, "dead-letters: include replayed ones")
	if err := fs.Parse(args); err != nil {
		return f, fmt.Errorf("%w: sync %s: %v", errUsage, sub, err)
	}
	f.rest = fs.Args()
	return f, nil
}

var validType = regexp.MustCompile(`^[A-Z][A-Za-z]{1,63}$`)

// newDestination checks the flags of sync destination add; every problem
// is reported at once.
func newDestination(ctx context.Context, f syncFlags) (store.Destination, error) {
	allow := kapsync.AllowNone
	if f.allowLoopback {
		allow = kapsync.AllowLoopback
	}
	var errs []error
	if !validClientID.MatchString(f.partner) {
		errs = append(errs, errors.New("--partner must match [A-Za-z0-9._-]{1,64}"))
	}
	if err := kapsync.CheckURL(ctx, f.url, allow); err != nil {
		errs = append(errs, fmt.Errorf("--url: %w", err))
	}
	errs = append(errs, checkAuth(ctx, f, allow)...)
	var types []string
	for _, t := range strings.Split(f.types, ",") {
		if t = strings.TrimSpace(t); t == "" {
			continue
		}
		if !validType.MatchString(t) {
			errs = append(errs, fmt.Errorf("--types: %q is not a FHIR resource type", t))
		}
		types = append(types, t)
	}
	if f.concurrency < 1 || f.concurrency > 64 {
		errs = append(errs, errors.New("--concurrency must be between 1 and 64"))
	}
	rate, err := parseRate(f.rate)
	if err != nil || rate == 0 {
		errs = append(errs, errors.New("--rate must be a positive number of requests per second, such as 10/s"))
	}
	if err := errors.Join(errs...); err != nil {
		return store.Destination{}, fmt.Errorf("%w: %w", errUsage, err)
	}
	return store.Destination{PartnerID: f.partner, BaseURL: f.url, Auth: f.auth, TokenURL: f.tokenURL,
		ClientID: f.clientID, KeyID: f.keyID, SecretRef: f.keyRef, Scope: f.scope, Types: types,
		Concurrency: f.concurrency, Rate: rate, Allow: string(allow), TLSCertRef: f.tlsCertRef, TLSKeyRef: f.tlsKeyRef,
		CARef: f.caRef, OnConflict: f.conflict}, nil
}

// checkAuth checks the authentication flags of sync destination add.
func checkAuth(ctx context.Context, f syncFlags, allow kapsync.Allow) []error {
	var errs []error
	switch f.auth {
	case "none":
		if !f.allowLoopback {
			errs = append(errs, errors.New("--auth none needs --sync-allow-loopback (tests and development only)"))
		}
	case "smart", "secret":
		if err := kapsync.CheckURL(ctx, f.tokenURL, allow); err != nil {
			errs = append(errs, fmt.Errorf("--token-url: %w", err))
		}
		if f.clientID == "" {
			errs = append(errs, errors.New("--client-id is required with --auth "+f.auth))
		}
		if _, err := secrets.ParseRef(f.keyRef); err != nil {
			errs = append(errs, errors.New("--key-ref must be a vault: or local: secret reference"))
		}
		if f.auth == "smart" && f.keyID == "" {
			errs = append(errs, errors.New("--key-id is required with --auth smart"))
		}
	case "mtls":
		for _, r := range []struct{ flag, ref string }{{"--tls-cert-ref", f.tlsCertRef}, {"--tls-key-ref", f.tlsKeyRef}} {
			if _, err := secrets.ParseRef(r.ref); err != nil {
				errs = append(errs, errors.New(r.flag+" must be a vault: or local: secret reference with --auth mtls"))
			}
		}
	default:
		errs = append(errs, errors.New("--auth must be smart, secret, mtls or none"))
	}
	if f.auth != "mtls" && (f.tlsCertRef != "" || f.tlsKeyRef != "") {
		errs = append(errs, errors.New("--tls-cert-ref and --tls-key-ref go with --auth mtls only"))
	}
	if _, err := secrets.ParseRef(f.caRef); f.caRef != "" && err != nil {
		errs = append(errs, errors.New("--ca-ref must be a vault: or local: secret reference"))
	}
	if f.conflict != "resend" && f.conflict != "review" {
		errs = append(errs, errors.New("--on-conflict must be resend or review"))
	}
	return errs
}

func syncAddDestination(ctx context.Context, f syncFlags, st *store.Store, stdout io.Writer) error {
	d, err := newDestination(ctx, f)
	if err != nil {
		return err
	}
	if err := st.PutDestination(ctx, d); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("%w: partner %s is not registered (kapgw partners add)", errUsage, d.PartnerID)
		}
		return err
	}
	fmt.Fprintf(stdout, "%s: destination add done\n", d.PartnerID)
	return nil
}

func syncStatus(ctx context.Context, st *store.Store, stdout io.Writer) error {
	dests, err := st.Destinations(ctx)
	if err != nil {
		return err
	}
	counts, err := st.SyncStatus(ctx)
	if err != nil {
		return err
	}
	byPartner := map[string]store.SyncCounts{}
	for _, c := range counts {
		byPartner[c.PartnerID] = c
	}
	w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "PARTNER\tSTATUS\tURL\tRESOURCES\tLAST_DELIVERED\tOPEN_DEAD_LETTERS")
	for _, d := range dests {
		c := byPartner[d.PartnerID]
		status, last := "active", "-"
		if d.Disabled || d.ClientDisabled {
			status = "disabled"
		}
		if c.LastDelivered != nil {
			last = c.LastDelivered.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%d\t%s\t%d\n", d.PartnerID, status, d.BaseURL, c.Resources, last, c.OpenDead)
	}
	return w.Flush()
}

func syncDeadLetters(ctx context.Context, st *store.Store, all bool, stdout io.Writer) error {
	dead, err := st.DeadLetters(ctx, all)
	if err != nil {
		return err
	}
	w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "ID\tPARTNER\tEPISODE\tREASON\tCODE\tATTEMPTS\tAT\tREPLAYED")
	for _, d := range dead {
		replayed := "-"
		if d.ReplayedAt != nil {
			replayed = d.ReplayedAt.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(w, "%d\t%s\t%s\t%s\t%s\t%d\t%s\t%s\n", d.ID, d.PartnerID, d.EpisodeID, d.Reason, or(d.Code, "-"),
			d.Attempts, d.At.UTC().Format(time.RFC3339), replayed)
	}
	return w.Flush()
}

// syncReplay enqueues a dead letter's delivery again in the transaction
// that marks it replayed, and records the replay in the exchange log.
func syncReplay(ctx context.Context, st *store.Store, id int64, stdout io.Writer) error {
	if err := jobs.Migrate(ctx, st); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	q, err := jobs.New(st, slog.New(slog.DiscardHandler), jobs.Config{})
	if err != nil {
		return fmt.Errorf("job queue: %w", err)
	}
	outbox := newOutbox(st, q)
	var dead store.DeadLetter
	replayed, err := st.ReplayDeadLetter(ctx, id, func(tx store.Tx, d store.DeadLetter) error {
		dead = d
		args := kapsync.PushArgs{PartnerID: d.PartnerID, EpisodeID: d.EpisodeID, PatientID: d.PatientID}
		return q.InsertTx(ctx, tx, args, outbox.InsertOpts())
	})
	if err != nil {
		return fmt.Errorf("replay dead letter %d: %w", id, err)
	}
	if !replayed {
		fmt.Fprintf(stdout, "dead letter %d: not open (unknown or already replayed), nothing enqueued\n", id)
		return nil
	}
	if _, err := st.AddExchange(ctx, store.Exchange{At: time.Now(), Kind: "admin", Direction: "out",
		EpisodeID: dead.EpisodeID, PartnerID: dead.PartnerID, Refs: []string{"Patient/" + dead.PatientID},
		Operation: "sync replay " + strconv.FormatInt(id, 10), Status: "ok"}); err != nil {
		return fmt.Errorf("record replay of dead letter %d: %w", id, err)
	}
	fmt.Fprintf(stdout, "dead letter %d: delivery to %s enqueued\n", id, dead.PartnerID)
	return nil
}
