package telemetry

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// DefaultSampler is used when OTEL_TRACES_SAMPLER is not set. Every request
// an integration engineer may ask about is recorded (parent-based, so a
// caller's sampling decision in traceparent is honoured); see
// docs/performance.md for what that costs.
const DefaultSampler = "parentbased_always_on"

// otlpExporter returns the OTLP/HTTP exporter the environment configures, or
// nil when no endpoint is set or OTEL_TRACES_EXPORTER is "none". The exporter
// reads its endpoint, headers, timeout and TLS settings from the standard
// OTEL_EXPORTER_OTLP_* variables itself.
func otlpExporter(ctx context.Context, getenv func(string) string) (sdktrace.SpanExporter, error) {
	switch getenv("OTEL_TRACES_EXPORTER") {
	case "none":
		return nil, nil
	case "", "otlp":
	default:
		return nil, fmt.Errorf("OTEL_TRACES_EXPORTER %q: only otlp and none are supported", getenv("OTEL_TRACES_EXPORTER"))
	}
	if getenv("OTEL_EXPORTER_OTLP_ENDPOINT") == "" && getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") == "" {
		return nil, nil
	}
	proto := getenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
	if proto == "" {
		proto = getenv("OTEL_EXPORTER_OTLP_PROTOCOL")
	}
	if proto != "" && proto != "http/protobuf" {
		return nil, fmt.Errorf("OTEL_EXPORTER_OTLP_PROTOCOL %q: only http/protobuf is supported (port 4318)", proto)
	}
	exp, err := otlptracehttp.New(ctx)
	if err != nil {
		return nil, fmt.Errorf("otlp trace exporter: %w", err)
	}
	return exp, nil
}

// sampler reads OTEL_TRACES_SAMPLER and OTEL_TRACES_SAMPLER_ARG through
// getenv (the SDK would read the process environment directly).
func sampler(getenv func(string) string) (sdktrace.Sampler, string, error) {
	name := getenv("OTEL_TRACES_SAMPLER")
	if name == "" {
		name = DefaultSampler
	}
	arg := getenv("OTEL_TRACES_SAMPLER_ARG")
	ratio := 1.0
	if strings.HasSuffix(name, "traceidratio") && arg != "" {
		r, err := strconv.ParseFloat(arg, 64)
		if err != nil || r < 0 || r > 1 {
			return nil, "", fmt.Errorf("OTEL_TRACES_SAMPLER_ARG %q: want a ratio between 0 and 1", arg)
		}
		ratio = r
	}
	desc := name
	if strings.HasSuffix(name, "traceidratio") {
		desc = name + " " + strconv.FormatFloat(ratio, 'g', -1, 64)
	}
	switch name {
	case "always_on":
		return sdktrace.AlwaysSample(), desc, nil
	case "always_off":
		return sdktrace.NeverSample(), desc, nil
	case "traceidratio":
		return sdktrace.TraceIDRatioBased(ratio), desc, nil
	case "parentbased_always_on":
		return sdktrace.ParentBased(sdktrace.AlwaysSample()), desc, nil
	case "parentbased_always_off":
		return sdktrace.ParentBased(sdktrace.NeverSample()), desc, nil
	case "parentbased_traceidratio":
		return sdktrace.ParentBased(sdktrace.TraceIDRatioBased(ratio)), desc, nil
	}
	return nil, "", fmt.Errorf("OTEL_TRACES_SAMPLER %q is not supported", name)
}
