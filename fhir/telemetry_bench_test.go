package fhir_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/kapgw/kapgw/fhir"
	"github.com/kapgw/kapgw/internal/intake"
	"github.com/kapgw/kapgw/internal/store"
	"github.com/kapgw/kapgw/internal/telemetry"
)

// discard is a span exporter that drops batches, so the benchmark measures
// recording and batching, not a collector.
type discard struct{}

func (discard) ExportSpans(context.Context, []sdktrace.ReadOnlySpan) error { return nil }
func (discard) Shutdown(context.Context) error                             { return nil }

// BenchmarkReadByIDTracing measures GET /fhir/r4/{type}/{id} on SQLite with
// 8 concurrent clients: telemetry off; on without an exporter (the default
// with no OTEL_ endpoint: trace ids, no recording); and on with the default
// sampler (parentbased_always_on) recording every request and its database
// spans into a batch exporter.
func BenchmarkReadByIDTracing(b *testing.B) {
	cases := []struct {
		name string
		tp   func(b *testing.B) trace.TracerProvider
	}{
		{"off", func(*testing.B) trace.TracerProvider { return nil }},
		{"no-exporter", func(b *testing.B) trace.TracerProvider {
			tel, err := telemetry.New(context.Background(), telemetry.Options{})
			if err != nil {
				b.Fatal(err)
			}
			return tel.TracerProvider
		}},
		{"always-on", func(b *testing.B) trace.TracerProvider {
			tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(discard{}),
				sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.AlwaysSample())))
			b.Cleanup(func() { tp.Shutdown(context.Background()) })
			return tp
		}},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			tp := c.tp(b)
			ctx := context.Background()
			st, err := store.Open(ctx, store.Config{DataDir: b.TempDir(), Tracer: tp}, time.Now)
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { st.Close() })
			if err := st.Migrate(ctx); err != nil {
				b.Fatal(err)
			}
			o := fhir.Options{Log: slog.New(telemetry.LogHandler(slog.NewJSONHandler(io.Discard, nil))),
				Intake: intake.New(st, time.Now, ""), Reader: st, Ready: st, MaxBodyBytes: 1 << 20, Now: time.Now}
			if tp != nil {
				tel, err := telemetry.New(ctx, telemetry.Options{})
				if err != nil {
					b.Fatal(err)
				}
				o.Telemetry = fhir.Telemetry{Tracer: tp, Meter: tel.MeterProvider, Propagator: tel.Propagator}
			}
			srv := startAuthedCaching(b, st, o, benchClientCache)
			srv.Client().Transport.(*bearerTransport).base.(*http.Transport).MaxIdleConnsPerHost = 64
			benchReadByID(b, srv, st, 4)
		})
	}
}
