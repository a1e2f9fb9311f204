package main

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/kapgw/kapgw/fhir"
	"github.com/kapgw/kapgw/internal/audit"
	"github.com/kapgw/kapgw/internal/config"
	"github.com/kapgw/kapgw/internal/exchange"
	"github.com/kapgw/kapgw/internal/store"
)

// retentionEvery is how often old AuditEvents and exchange rows are
// deleted after the start-up pass.
const retentionEvery = time.Hour

// auditOptions tunes the AuditEvent writer for the database: SQLite has a
// single writer, so one committer gathers larger groups; PostgreSQL
// overlaps two commits' round trips. The exchange log's queued rows ride
// in every group commit.
func auditOptions(dialect string, rider audit.Rider) audit.Options {
	o := audit.Options{Rider: rider, Committers: 2}
	if dialect == "sqlite" {
		o.Committers = 1
	}
	return o
}

// startAudit starts the AuditEvent group-commit writer (when audit is on)
// and retention: a pass now, then hourly. Retention runs in every instance
// and is idempotent; it is not a River job because the queue only runs
// when a pharmacy is configured. stop ends both. On SQLite it first opens
// the AuditEvent journal and replays what a previous process left; if
// that fails the gateway does not start (serving would mean refusing every
// audited access, or serving unaudited).
func startAudit(ctx context.Context, log *slog.Logger, cfg config.Audit, st *store.Store, rider audit.Rider) (auditing, error) {
	var j *audit.Journal
	if cfg.Enabled {
		var err error
		if j, err = openJournal(ctx, log, cfg, st); err != nil {
			return auditing{}, fmt.Errorf("AuditEvent journal: %w", err)
		}
	}
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(retentionEvery)
		defer t.Stop()
		for {
			prune(rctx, log, cfg, st)
			select {
			case <-rctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	a := fhir.Audit{Log: st}
	var w *audit.Writer
	if cfg.Enabled {
		o := auditOptions(st.Dialect(), rider)
		o.Journal = j
		w = audit.NewWriter(st, time.Now, o)
		a.Writer = w
		if j != nil {
			a.Log = syncedLog{w: w, st: st}
		}
	} else {
		log.WarnContext(ctx, "AuditEvents are off: accesses to patient data are not audited")
	}
	run := auditing{api: a, sync: func(context.Context) error { return nil }, stop: func() {
		cancel()
		<-done
		if w != nil {
			w.Close()
		}
	}}
	if w != nil {
		run.sync = w.Sync
	}
	return run, nil
}

// auditing is the running AuditEvent writer: what the HTTP API records
// through, sync (everything recorded so far reaches the database,
// through the journal on SQLite) and stop.
type auditing struct {
	api  fhir.Audit
	sync func(context.Context) error
	stop func()
}

// freshExchanges lists the exchange log after writing what is still on
// its way there (rows lingering in the queue, or in the AuditEvent
// journal), so that GET /admin/v1/exchanges?trace= finds a request
// answered a moment ago.
type freshExchanges struct {
	*exchange.Recorder
	sync func(context.Context) error
}

// Exchanges syncs the AuditEvent writer, flushes the queue, then lists.
func (x freshExchanges) Exchanges(ctx context.Context, f store.ExchangeFilter) ([]store.Exchange, error) {
	if err := x.sync(ctx); err != nil {
		return nil, fmt.Errorf("exchanges: %w", err)
	}
	if err := x.Flush(ctx); err != nil {
		return nil, fmt.Errorf("exchanges: %w", err)
	}
	return x.Recorder.Exchanges(ctx, f)
}

// openJournal opens the AuditEvent journal next to the SQLite database
// (audit-journal/), replaying what a previous process left, so that each
// access waits for an append instead of a transaction. PostgreSQL keeps
// its group commits to the database: nil.
func openJournal(ctx context.Context, log *slog.Logger, cfg config.Audit, st *store.Store) (*audit.Journal, error) {
	if st.Dialect() != "sqlite" {
		return nil, nil
	}
	dir, err := st.DatabaseDir(ctx)
	if err != nil {
		return nil, err
	}
	return audit.OpenJournal(ctx, filepath.Join(dir, "audit-journal"), st, audit.JournalOptions{Fsync: cfg.JournalFsync, Log: log})
}

// syncedLog serves AuditEvents after ingesting the journal, so a search
// sees every access recorded before it.
type syncedLog struct {
	w  *audit.Writer
	st *store.Store
}

// AuditEvents ingests what is journalled, then lists from the database.
func (l syncedLog) AuditEvents(ctx context.Context, f store.AuditFilter) ([]store.AuditRecord, error) {
	if err := l.w.Sync(ctx); err != nil {
		return nil, fmt.Errorf("audit events: %w", err)
	}
	return l.st.AuditEvents(ctx, f)
}

// prune deletes AuditEvents and exchange rows past their retention.
func prune(ctx context.Context, log *slog.Logger, cfg config.Audit, st *store.Store) {
	now := time.Now()
	if n, err := st.DeleteAuditEventsBefore(ctx, now.Add(-cfg.Retention)); err != nil {
		log.WarnContext(ctx, "audit retention", "err", err.Error())
	} else if n > 0 {
		log.InfoContext(ctx, "audit retention", "deleted", n)
	}
	if n, err := st.DeleteExchangesBefore(ctx, now.Add(-cfg.ExchangeRetention)); err != nil {
		log.WarnContext(ctx, "exchange retention", "err", err.Error())
	} else if n > 0 {
		log.InfoContext(ctx, "exchange retention", "deleted", n)
	}
}
