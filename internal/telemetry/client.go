package telemetry

import (
	"fmt"
	"net/http"

	"github.com/redis/go-redis/extra/redisotel/v9"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
)

// Transport wraps base (nil: http.DefaultTransport) so that every outbound
// request gets a client span, a traceparent header and the HTTP client
// metrics. Span names are the method only; the URL recorded keeps scheme,
// host and path (the redacting span processor drops query strings).
func (t *Telemetry) Transport(base http.RoundTripper) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	return otelhttp.NewTransport(base,
		otelhttp.WithTracerProvider(t.TracerProvider),
		otelhttp.WithMeterProvider(t.MeterProvider),
		otelhttp.WithPropagators(t.Propagator),
		otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string { return r.Method }),
	)
}

// InstrumentRedis adds tracing and metrics to a go-redis client. Command
// arguments are never recorded (they hold keys and values).
func (t *Telemetry) InstrumentRedis(rdb redis.UniversalClient) error {
	if err := redisotel.InstrumentTracing(rdb,
		redisotel.WithTracerProvider(t.TracerProvider),
		redisotel.WithDBStatement(false),
		redisotel.WithCallerEnabled(false),
	); err != nil {
		return fmt.Errorf("redis tracing: %w", err)
	}
	if err := redisotel.InstrumentMetrics(rdb, redisotel.WithMeterProvider(t.MeterProvider)); err != nil {
		return fmt.Errorf("redis metrics: %w", err)
	}
	return nil
}
