package main

import (
	"context"
	"io"
	"log/slog"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/kapgw/kapgw/fhir"
	"github.com/kapgw/kapgw/internal/telemetry"
)

// hooks are test-only injections into run; the zero value is production.
type hooks struct {
	spans   sdktrace.SpanExporter // replaces the OTLP exporter
	metrics sdkmetric.Reader      // added beside the Prometheus reader
}

// newTelemetry builds the tracer and meter providers from the OTEL_*
// environment read through getenv.
func newTelemetry(ctx context.Context, getenv func(string) string, h hooks) (*telemetry.Telemetry, error) {
	return telemetry.New(ctx, telemetry.Options{
		Getenv: getenv, Version: "dev", SpanExporter: h.spans, MetricReader: h.metrics,
	})
}

// newTracedLogger is newLogger with trace_id and span_id on every line
// logged with a context that carries a span.
func newTracedLogger(w io.Writer, level string) *slog.Logger {
	return slog.New(telemetry.LogHandler(newLogger(w, level).Handler()))
}

// fhirTelemetry is what the HTTP surface takes from tel.
func fhirTelemetry(tel *telemetry.Telemetry) fhir.Telemetry {
	return fhir.Telemetry{Tracer: tel.TracerProvider, Meter: tel.MeterProvider, Propagator: tel.Propagator, Metrics: tel.Metrics}
}

// shutdownTelemetry flushes spans within timeout; it runs after the server
// and every other dependency have stopped.
func shutdownTelemetry(log *slog.Logger, tel *telemetry.Telemetry, timeout time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := tel.Shutdown(ctx); err != nil {
		log.Warn("telemetry shutdown", "error", err)
	}
}
