package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/kapgw/kapgw/internal/exchange"
	"github.com/kapgw/kapgw/internal/secrets"
	"github.com/kapgw/kapgw/internal/store"
)

// exchangeQueue is how many exchange rows may wait for the background
// writer before new ones are dropped.
const exchangeQueue = 8192

// exchangeLinger is how long exchange rows wait in the queue (less when it
// is half full). With AuditEvents on, the audit writer takes them into its
// group commits meanwhile, so most cost no transaction of their own; with
// them off, one transaction writes everything a linger gathered instead of
// one small commit per burst of requests.
const exchangeLinger = 50 * time.Millisecond

// newExchangeLog returns the exchange log recorder, encrypting payloads with
// the Transit key kapgw-exchange (a local key with the development store),
// and writing HTTP exchanges in background batches until Close; with
// AuditEvents on, the AuditEvent writer takes them as they linger.
func newExchangeLog(ctx context.Context, log *slog.Logger, sec *secrets.Backend, st *store.Store) (*exchange.Recorder, error) {
	c, err := sec.ExchangeCipher(ctx)
	if err != nil {
		return nil, fmt.Errorf("exchange log: %w", err)
	}
	r := exchange.New(st, c, log, time.Now)
	r.StartBatching(exchangeQueue, exchangeLinger)
	return r, nil
}

const exchangesUsage = `kapgw exchanges: what happened to a request, from the exchange log

Usage:
  kapgw exchanges [--trace ID] [--episode ID] [--partner CLIENT] [--status S]
                  [--since RFC3339] [--before EXCHANGE-ID] [--limit N] [--json]

Rows come newest first; --before with the last id shown pages on. Payloads
are never printed here: an admin client fetches one through
GET /admin/v1/exchanges/{id}/payload, which is itself logged.
`

// runExchanges lists the exchange log straight from the database, with the
// filters of GET /admin/v1/exchanges.
func runExchanges(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) > 0 && (args[0] == "help" || args[0] == "-h" || args[0] == "--help") {
		fmt.Fprint(stdout, exchangesUsage)
		return nil
	}
	var pf partnerFlags
	var f store.ExchangeFilter
	var since string
	var asJSON bool
	fs := flag.NewFlagSet("exchanges", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&pf.dataDir, "data-dir", or(getenv("KAPGW_DATA_DIR"), "./kapgw-data"), "directory of the embedded SQLite database")
	fs.StringVar(&pf.databaseURL, "database-url", getenv("KAPGW_DATABASE_URL"), "PostgreSQL URL; empty uses SQLite under --data-dir")
	fs.StringVar(&f.TraceID, "trace", "", "trace id (32 hex digits)")
	fs.StringVar(&f.EpisodeID, "episode", "", "episode id")
	fs.StringVar(&f.PartnerID, "partner", "", "client id (partner, clinic, admin) or pharmacy")
	fs.StringVar(&f.Status, "status", "", "ok, rejected, error, or a pharmacy step")
	fs.StringVar(&since, "since", "", "only exchanges at or after this RFC 3339 time")
	fs.Int64Var(&f.Before, "before", 0, "only exchanges with a smaller id (paging)")
	fs.IntVar(&f.Limit, "limit", 50, "rows to show (at most 1000)")
	fs.BoolVar(&asJSON, "json", false, "print JSON lines")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: exchanges: %v", errUsage, err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: exchanges: unexpected arguments", errUsage)
	}
	if since != "" {
		t, err := time.Parse(time.RFC3339, since)
		if err != nil {
			return fmt.Errorf("%w: --since must be an RFC 3339 time", errUsage)
		}
		f.Since = t
	}
	return withRegistry(ctx, pf, func(st *store.Store) error {
		rows, err := st.Exchanges(ctx, f)
		if err != nil {
			return err
		}
		if asJSON {
			return printExchangesJSON(stdout, rows)
		}
		return printExchanges(stdout, rows)
	})
}

func printExchanges(w io.Writer, rows []store.Exchange) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tAT\tKIND\tDIR\tSTATUS\tCODE\tATTEMPT\tMS\tERROR\tPARTNER\tEPISODE\tTRACE\tOPERATION\tREFS")
	for _, e := range rows {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%d\t%d\t%s\t%s\t%s\t%s\t%s\t%s\n", e.ID, e.At.Format(time.RFC3339),
			e.Kind, e.Direction, e.Status, e.Code, e.Attempt, e.Duration.Milliseconds(), e.ErrorClass, e.PartnerID,
			e.EpisodeID, e.TraceID, e.Operation, strings.Join(e.Refs, ","))
	}
	return tw.Flush()
}

func printExchangesJSON(w io.Writer, rows []store.Exchange) error {
	enc := json.NewEncoder(w)
	for _, e := range rows {
		e.Payload = ""
		if err := enc.Encode(e); err != nil {
			return err
		}
	}
	return nil
}
