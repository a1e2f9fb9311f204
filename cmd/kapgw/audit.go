package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/kapgw/kapgw/fhir"
	"github.com/kapgw/kapgw/internal/audit"
	"github.com/kapgw/kapgw/internal/config"
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
// when a pharmacy is configured. stop ends both.
func startAudit(ctx context.Context, log *slog.Logger, cfg config.Audit, st *store.Store, rider audit.Rider) (fhir.Audit, func()) {
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
		w = audit.NewWriter(st, time.Now, auditOptions(st.Dialect(), rider))
		a.Writer = w
	} else {
		log.WarnContext(ctx, "AuditEvents are off: accesses to patient data are not audited")
	}
	return a, func() {
		cancel()
		<-done
		if w != nil {
			w.Close()
		}
	}
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
