// Package telemetry builds the gateway's OpenTelemetry tracer and meter
// providers, its Prometheus /metrics handler and the slog handler that puts
// trace and span ids on every log line.
//
// Nothing here is global: the providers are returned to run.go, which passes
// them to every component's constructor. otel.SetTracerProvider is never
// called.
//
// Export follows the standard OTEL_* environment variables, over OTLP/gRPC
// or OTLP/HTTP (OTEL_EXPORTER_OTLP_PROTOCOL): with no OTLP endpoint
// (OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) no
// exporter runs and no span is recorded, yet every request still gets a
// trace id to quote. Metrics are pulled from the Prometheus endpoint and,
// with OTEL_METRICS_EXPORTER=otlp, also pushed over OTLP. Telemetry never carries PHI: span names and attributes
// hold route templates, ids and codes only (see docs/observability.md).
package telemetry

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel/attribute"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// Options configure New.
type Options struct {
	// Getenv reads the OTEL_* variables; run.go passes its own getenv.
	Getenv func(string) string
	// Version is the service.version resource attribute.
	Version string
	// SpanExporter, when set, receives every span (synchronously, always
	// sampled) instead of an OTLP exporter. Tests use an in-memory one.
	SpanExporter sdktrace.SpanExporter
	// MetricReader, when set, is added beside the Prometheus reader. Tests
	// use a manual reader.
	MetricReader sdkmetric.Reader
}

// Telemetry holds the providers every component is built with.
type Telemetry struct {
	// TracerProvider starts spans; pass it to constructors, never globally.
	TracerProvider trace.TracerProvider
	// MeterProvider creates instruments.
	MeterProvider metric.MeterProvider
	// Propagator reads and writes W3C traceparent and tracestate headers.
	Propagator propagation.TextMapPropagator
	// Metrics serves the Prometheus text format from the gateway's own
	// registry.
	Metrics http.Handler
	// Exporting says whether spans leave the process (an OTLP endpoint or
	// an injected exporter is configured).
	Exporting bool
	// Sampler describes the sampler in use, for the start-up log line.
	Sampler string

	shutdown []func(context.Context) error
}

// New builds the providers. It starts no network connection: the OTLP
// exporter connects lazily when the first batch is sent.
func New(ctx context.Context, o Options) (*Telemetry, error) {
	if o.Getenv == nil {
		o.Getenv = func(string) string { return "" }
	}
	res := resource.NewWithAttributes(semconv.SchemaURL,
		semconv.ServiceName(serviceName(o.Getenv)),
		semconv.ServiceVersion(o.Version),
	)
	t := &Telemetry{Propagator: propagation.TraceContext{}}
	if err := t.buildTracing(ctx, o, res); err != nil {
		return nil, err
	}
	if err := t.buildMetrics(ctx, o, res); err != nil {
		return nil, errors.Join(err, t.Shutdown(ctx))
	}
	return t, nil
}

func serviceName(getenv func(string) string) string {
	if n := getenv("OTEL_SERVICE_NAME"); n != "" {
		return n
	}
	return "kapgw"
}

// buildTracing installs the exporter the environment asks for, or none.
func (t *Telemetry) buildTracing(ctx context.Context, o Options, res *resource.Resource) error {
	opts := []sdktrace.TracerProviderOption{
		sdktrace.WithResource(res),
		sdktrace.WithSpanProcessor(redactor{}),
		sdktrace.WithIDGenerator(IDGenerator()),
	}
	switch {
	case o.SpanExporter != nil:
		t.Exporting, t.Sampler = true, "always_on"
		opts = append(opts, sdktrace.WithSampler(sdktrace.AlwaysSample()), sdktrace.WithSyncer(o.SpanExporter))
	default:
		exp, err := otlpExporter(ctx, o.Getenv)
		if err != nil {
			return err
		}
		if exp == nil {
			// No exporter: spans are never recorded, but they still get
			// trace ids, so responses and logs carry one.
			t.Sampler = "always_off (no OTLP endpoint)"
			opts = append(opts, sdktrace.WithSampler(sdktrace.NeverSample()))
			break
		}
		s, desc, err := sampler(o.Getenv)
		if err != nil {
			return err
		}
		t.Exporting, t.Sampler = true, desc
		opts = append(opts, sdktrace.WithSampler(s), sdktrace.WithBatcher(exp))
	}
	tp := sdktrace.NewTracerProvider(opts...)
	t.TracerProvider = tp
	t.shutdown = append(t.shutdown, tp.Shutdown)
	return nil
}

// buildMetrics creates the meter provider and its Prometheus registry.
func (t *Telemetry) buildMetrics(ctx context.Context, o Options, res *resource.Resource) error {
	reg := prometheus.NewRegistry()
	if err := reg.Register(collectors.NewGoCollector()); err != nil {
		return fmt.Errorf("register go collector: %w", err)
	}
	if err := reg.Register(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})); err != nil {
		return fmt.Errorf("register process collector: %w", err)
	}
	exp, err := otelprom.New(otelprom.WithRegisterer(reg), otelprom.WithoutScopeInfo())
	if err != nil {
		return fmt.Errorf("prometheus exporter: %w", err)
	}
	opts := []sdkmetric.Option{sdkmetric.WithResource(res), sdkmetric.WithReader(exp)}
	if o.MetricReader != nil {
		opts = append(opts, sdkmetric.WithReader(o.MetricReader))
	}
	push, err := otlpMetricReader(ctx, o.Getenv)
	if err != nil {
		return err
	}
	if push != nil {
		opts = append(opts, sdkmetric.WithReader(push))
	}
	mp := sdkmetric.NewMeterProvider(opts...)
	t.MeterProvider = mp
	t.Metrics = promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
	t.shutdown = append(t.shutdown, mp.Shutdown)
	return nil
}

// Shutdown flushes pending spans and stops the providers; call it last, after
// the HTTP server has stopped.
func (t *Telemetry) Shutdown(ctx context.Context) error {
	var errs []error
	for i := len(t.shutdown) - 1; i >= 0; i-- {
		errs = append(errs, t.shutdown[i](ctx))
	}
	t.shutdown = nil
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("telemetry shutdown: %w", err)
	}
	return nil
}

// Attributes is a shorthand for metric options.
func attrs(kv ...attribute.KeyValue) metric.MeasurementOption {
	return metric.WithAttributes(kv...)
}
