package fhir_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/kapgw/kapgw/fhir"
	"github.com/kapgw/kapgw/internal/audit"
	"github.com/kapgw/kapgw/internal/exchange"
	"github.com/kapgw/kapgw/internal/intake"
	"github.com/kapgw/kapgw/internal/secrets"
	"github.com/kapgw/kapgw/internal/store"
	"github.com/kapgw/kapgw/internal/telemetry"
)

// BenchmarkReadByIDAudit measures GET /fhir/r4/{type}/{id} with 8
// concurrent clients on SQLite and PostgreSQL: audit and exchange log off;
// AuditEvents on (group-committed, each response held until durable: on
// SQLite appended to the journal, as kapgw serve does); the
// exchange log on (one row per request, batched in the background); both;
// and both with tracing at the default sampler (parentbased_always_on,
// batch exporter that drops, the gateway's time-ordered trace ids). The
// -32-clients cases show how the group commit amortises with more requests
// in flight; +fsync what an fdatasync of the SQLite journal per group costs
// (--audit-journal-fsync).
func BenchmarkReadByIDAudit(b *testing.B) {
	cases := []struct {
		name                   string
		audit, exchange, trace bool
		perCPU                 int  // clients per GOMAXPROCS
		fsync                  bool // SQLite: fdatasync the journal per group
	}{
		{"off", false, false, false, 4, false},
		{"audit", true, false, false, 4, false},
		{"exchange-log", false, true, false, 4, false},
		{"audit+exchange-log", true, true, false, 4, false},
		{"audit+exchange-log+tracing", true, true, true, 4, false},
		{"off-32-clients", false, false, false, 16, false},
		{"audit-32-clients", true, false, false, 16, false},
		{"audit+exchange-log+tracing-32-clients", true, true, true, 16, false},
		{"audit+exchange-log+fsync", true, true, false, 4, true},
	}
	for _, kind := range []string{"sqlite", "postgres"} {
		for _, c := range cases {
			if c.fsync && kind != "sqlite" {
				continue // PostgreSQL has no journal
			}
			b.Run(kind+"/"+c.name, func(b *testing.B) {
				ctx := context.Background()
				cfg := store.Config{DataDir: b.TempDir()}
				if kind == "postgres" {
					cfg.DatabaseURL = benchPostgres(b)
				}
				var tp *sdktrace.TracerProvider
				if c.trace {
					tp = sdktrace.NewTracerProvider(sdktrace.WithBatcher(discard{}),
						sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.AlwaysSample())),
						sdktrace.WithIDGenerator(telemetry.IDGenerator()))
					b.Cleanup(func() { tp.Shutdown(context.Background()) })
					cfg.Tracer = tp
				}
				st, err := store.Open(ctx, cfg, time.Now)
				if err != nil {
					b.Fatal(err)
				}
				b.Cleanup(func() { st.Close() })
				if err := st.Migrate(ctx); err != nil {
					b.Fatal(err)
				}
				log := slog.New(slog.NewJSONHandler(io.Discard, nil))
				o := fhir.Options{Log: log, Intake: intake.New(st, time.Now, ""), Reader: st, Ready: st, MaxBodyBytes: 1 << 20, Now: time.Now}
				var rider audit.Rider
				if c.exchange {
					dev, err := secrets.OpenDevStore(ctx, log, filepath.Join(b.TempDir(), "secrets"))
					if err != nil {
						b.Fatal(err)
					}
					ci, err := dev.Cipher(ctx, secrets.ExchangeKey)
					if err != nil {
						b.Fatal(err)
					}
					x := exchange.New(st, ci, log, time.Now)
					if c.audit {
						rider = x
					}
					x.StartBatching(8192, 50*time.Millisecond) // as kapgw serve does
					b.Cleanup(x.Close)
					o.Exchanges = x
				}
				if c.audit {
					// As kapgw serve: on SQLite one committer appending
					// each group to the journal, ingested in the
					// background; on PostgreSQL two committers writing
					// to the database. Exchange rows ride along.
					ao := audit.Options{Committers: 2, Rider: rider}
					if kind == "sqlite" {
						j, err := audit.OpenJournal(ctx, filepath.Join(cfg.DataDir, "audit-journal"), st, audit.JournalOptions{Fsync: c.fsync})
						if err != nil {
							b.Fatal(err)
						}
						ao.Committers, ao.Journal = 1, j
					}
					w := audit.NewWriter(st, time.Now, ao)
					b.Cleanup(w.Close)
					o.Audit = fhir.Audit{Writer: w, Log: st}
				}
				if c.trace {
					tel, err := telemetry.New(ctx, telemetry.Options{})
					if err != nil {
						b.Fatal(err)
					}
					o.Telemetry = fhir.Telemetry{Tracer: tp, Meter: tel.MeterProvider, Propagator: tel.Propagator}
				}
				srv := startAuthedCaching(b, st, o, benchClientCache) // as kapgw serve caches clients
				srv.Client().Transport.(*bearerTransport).base.(*http.Transport).MaxIdleConnsPerHost = 64
				benchReadByID(b, srv, st, c.perCPU)
			})
		}
	}
}
