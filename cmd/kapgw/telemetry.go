package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
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
	return fhir.Telemetry{Tracer: tel.TracerProvider, Meter: tel.MeterProvider, Propagator: tel.Propagator}
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

// startMetrics serves the Prometheus text format on GET /metrics at addr,
// a listener of its own: API clients never reach it, and the default
// (127.0.0.1:9464, the OpenTelemetry Prometheus exporter's port) keeps it
// on loopback unless the operator opens it to a scraper. addr "off" serves
// nothing. stop shuts the server down.
func startMetrics(ctx context.Context, log *slog.Logger, addr string, metrics http.Handler) (stop func(), err error) {
	if addr == "off" {
		log.InfoContext(ctx, "metrics endpoint off")
		return func() {}, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics: listen on %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", metrics)
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics server stopped", "err", err.Error())
		}
	}()
	log.InfoContext(ctx, "metrics listening", "addr", ln.Addr().String())
	return func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
		<-done
	}, nil
}
