package telemetry

import (
	"context"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetricgrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetrichttp"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// DefaultSampler is used when OTEL_TRACES_SAMPLER is not set. Every request
// an integration engineer may ask about is recorded (parent-based, so a
// caller's sampling decision in traceparent is honoured); see
// docs/performance.md for what that costs.
const DefaultSampler = "parentbased_always_on"

// OTLP protocols (OTEL_EXPORTER_OTLP_PROTOCOL and its per-signal forms).
const (
	ProtocolGRPC         = "grpc"          // port 4317
	ProtocolHTTPProtobuf = "http/protobuf" // port 4318, the default
)

// otlpTarget is where one signal goes: the protocol and the endpoint URL,
// both read through getenv. An empty endpoint means the signal is not
// exported.
type otlpTarget struct {
	protocol string
	endpoint string
}

// target reads OTEL_EXPORTER_OTLP_<SIGNAL>_{PROTOCOL,ENDPOINT}, falling back
// to OTEL_EXPORTER_OTLP_{PROTOCOL,ENDPOINT}. As the specification says, a
// general endpoint over http/protobuf gets the signal's path (/v1/traces)
// appended; a per-signal one, or any gRPC one, is used as written.
func target(getenv func(string) string, signal string) (otlpTarget, error) {
	up := strings.ToUpper(signal)
	t := otlpTarget{protocol: getenv("OTEL_EXPORTER_OTLP_" + up + "_PROTOCOL")}
	if t.protocol == "" {
		t.protocol = getenv("OTEL_EXPORTER_OTLP_PROTOCOL")
	}
	if t.protocol == "" {
		t.protocol = ProtocolHTTPProtobuf
	}
	if t.protocol != ProtocolGRPC && t.protocol != ProtocolHTTPProtobuf {
		return t, fmt.Errorf("OTEL_EXPORTER_OTLP_PROTOCOL %q: only grpc (port 4317) and http/protobuf (port 4318) are supported", t.protocol)
	}
	if e := getenv("OTEL_EXPORTER_OTLP_" + up + "_ENDPOINT"); e != "" {
		t.endpoint = e
	} else if e := getenv("OTEL_EXPORTER_OTLP_ENDPOINT"); e != "" {
		t.endpoint = e
		if t.protocol == ProtocolHTTPProtobuf {
			t.endpoint = strings.TrimSuffix(e, "/") + "/v1/" + signal
		}
	}
	if t.endpoint != "" {
		if u, err := url.Parse(t.endpoint); err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
			return t, fmt.Errorf("OTLP %s endpoint %q: want an http:// or https:// URL", signal, t.endpoint)
		}
	}
	return t, nil
}

// otlpExporter returns the OTLP span exporter the environment configures
// (gRPC or HTTP), or nil when no endpoint is set or OTEL_TRACES_EXPORTER is
// "none". The endpoint and protocol are read through getenv; the
// exporter reads the rest (headers, timeout, TLS certificates,
// compression) from the standard OTEL_EXPORTER_OTLP_* variables itself.
// An http:// endpoint is plaintext, https:// uses TLS.
func otlpExporter(ctx context.Context, getenv func(string) string) (sdktrace.SpanExporter, error) {
	switch getenv("OTEL_TRACES_EXPORTER") {
	case "none":
		return nil, nil
	case "", "otlp":
	default:
		return nil, fmt.Errorf("OTEL_TRACES_EXPORTER %q: only otlp and none are supported", getenv("OTEL_TRACES_EXPORTER"))
	}
	t, err := target(getenv, "traces")
	if err != nil || t.endpoint == "" {
		return nil, err
	}
	var exp sdktrace.SpanExporter
	if t.protocol == ProtocolGRPC {
		exp, err = otlptracegrpc.New(ctx, otlptracegrpc.WithEndpointURL(t.endpoint))
	} else {
		exp, err = otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(t.endpoint))
	}
	if err != nil {
		return nil, fmt.Errorf("otlp %s trace exporter: %w", t.protocol, err)
	}
	return exp, nil
}

// otlpMetricReader returns a periodic reader pushing metrics over OTLP
// when OTEL_METRICS_EXPORTER is "otlp" (the Prometheus endpoint serves
// them either way), or nil. Its endpoint and protocol are read like the
// traces' (OTEL_EXPORTER_OTLP_METRICS_*); OTEL_METRIC_EXPORT_INTERVAL is
// read through getenv too (default 60000).
func otlpMetricReader(ctx context.Context, getenv func(string) string) (sdkmetric.Reader, error) {
	switch getenv("OTEL_METRICS_EXPORTER") {
	case "", "none", "prometheus":
		return nil, nil
	case "otlp":
	default:
		return nil, fmt.Errorf("OTEL_METRICS_EXPORTER %q: only otlp, prometheus and none are supported", getenv("OTEL_METRICS_EXPORTER"))
	}
	t, err := target(getenv, "metrics")
	if err != nil {
		return nil, err
	}
	if t.endpoint == "" {
		return nil, fmt.Errorf("OTEL_METRICS_EXPORTER otlp needs OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_METRICS_ENDPOINT")
	}
	var exp sdkmetric.Exporter
	if t.protocol == ProtocolGRPC {
		exp, err = otlpmetricgrpc.New(ctx, otlpmetricgrpc.WithEndpointURL(t.endpoint))
	} else {
		exp, err = otlpmetrichttp.New(ctx, otlpmetrichttp.WithEndpointURL(t.endpoint))
	}
	if err != nil {
		return nil, fmt.Errorf("otlp %s metric exporter: %w", t.protocol, err)
	}
	var opts []sdkmetric.PeriodicReaderOption
	if v := getenv("OTEL_METRIC_EXPORT_INTERVAL"); v != "" {
		ms, err := strconv.Atoi(v)
		if err != nil || ms <= 0 {
			return nil, fmt.Errorf("OTEL_METRIC_EXPORT_INTERVAL %q: want milliseconds", v)
		}
		opts = append(opts, sdkmetric.WithInterval(time.Duration(ms)*time.Millisecond))
	}
	return sdkmetric.NewPeriodicReader(exp, opts...), nil
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
