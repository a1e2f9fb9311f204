package fhir

import (
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"
)

// instrumentationName names the HTTP surface's tracer and meter.
const instrumentationName = "github.com/kapgw/kapgw/fhir"

// Telemetry is what the HTTP surface needs to trace and measure requests.
// The zero value traces and measures nothing.
type Telemetry struct {
	Tracer     trace.TracerProvider
	Meter      metric.MeterProvider
	Propagator propagation.TextMapPropagator // nil: W3C trace context
}

// withDefaults fills the nil providers with no-op ones.
func (t Telemetry) withDefaults() Telemetry {
	if t.Tracer == nil {
		t.Tracer = tracenoop.NewTracerProvider()
	}
	if t.Meter == nil {
		t.Meter = metricnoop.NewMeterProvider()
	}
	if t.Propagator == nil {
		t.Propagator = propagation.TraceContext{}
	}
	return t
}

// traceRequests starts one server span per request, continuing a caller's
// W3C traceparent, and names it after the route template
// ("GET /fhir/r4/:type/:id"), never the URL. The response carries the span's
// traceparent so a partner can quote the trace id. It also records the
// request duration histogram by method, route template and status.
//
// It runs first, so the access log and every handler see the span in the
// request context. (otelecho is deprecated upstream; this is the small part
// of it kapgw needs, with attributes chosen to hold no PHI: no URL, no query,
// no body, no header values.)
func traceRequests(tel Telemetry) echo.MiddlewareFunc {
	tel = tel.withDefaults()
	tracer := tel.Tracer.Tracer(instrumentationName)
	duration, err := tel.Meter.Meter(instrumentationName).Float64Histogram("http.server.request.duration",
		metric.WithDescription("Duration of HTTP server requests by route template."), metric.WithUnit("s"),
		metric.WithExplicitBucketBoundaries(0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10))
	if err != nil {
		// Only an invalid instrument name fails; the name is a constant.
		duration, _ = metricnoop.NewMeterProvider().Meter("").Float64Histogram("")
	}
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			req := c.Request()
			start := time.Now()
			method := methodName(req.Method)
			route := routeTemplate(c)
			ctx := tel.Propagator.Extract(req.Context(), propagation.HeaderCarrier(req.Header))
			ctx, span := tracer.Start(ctx, method+" "+route, trace.WithSpanKind(trace.SpanKindServer),
				trace.WithAttributes(semconv.HTTPRequestMethodKey.String(method), semconv.HTTPRoute(route)))
			defer span.End()
			c.SetRequest(req.WithContext(ctx))
			tel.Propagator.Inject(ctx, propagation.HeaderCarrier(c.Response().Header()))

			err := next(c)
			if err != nil {
				c.Error(err)
			}
			status := c.Response().Status
			span.SetAttributes(semconv.HTTPResponseStatusCode(status), attribute.String("kapgw.request_id", requestID(c)))
			if status >= 500 {
				span.SetStatus(codes.Error, strconv.Itoa(status))
				span.SetAttributes(semconv.ErrorTypeKey.String(strconv.Itoa(status)))
			}
			duration.Record(ctx, time.Since(start).Seconds(), metric.WithAttributes(
				semconv.HTTPRequestMethodKey.String(method), semconv.HTTPRoute(route), semconv.HTTPResponseStatusCode(status)))
			return nil
		}
	}
}

// routeTemplate is the matched route's template (echo gives the template,
// never the raw path), or "unmatched" for requests no route takes.
func routeTemplate(c echo.Context) string {
	if p := c.Path(); p != "" {
		return p
	}
	return "unmatched"
}

// methodName keeps the standard methods and folds anything else into
// "_OTHER", so an invented method cannot grow the metric's label set.
func methodName(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return m
	}
	return "_OTHER"
}
