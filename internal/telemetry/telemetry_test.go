package telemetry

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

func TestNoEndpointMeansNoExportButTraceIDs(t *testing.T) {
	t.Parallel()
	tel, err := New(context.Background(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer tel.Shutdown(context.Background())
	_, span := tel.TracerProvider.Tracer("t").Start(context.Background(), "x")
	defer span.End()
	if tel.Exporting || span.IsRecording() || !span.SpanContext().IsValid() {
		t.Errorf("exporting %v, recording %v, valid trace id %v: want false, false, true",
			tel.Exporting, span.IsRecording(), span.SpanContext().IsValid())
	}
}

func TestSamplerFromEnvironment(t *testing.T) {
	t.Parallel()
	for env, want := range map[[2]string]string{
		{"", ""}:                            DefaultSampler,
		{"parentbased_traceidratio", "0.1"}: "parentbased_traceidratio 0.1",
		{"always_off", ""}:                  "always_off",
		{"traceidratio", ""}:                "traceidratio 1",
	} {
		_, got, err := sampler(func(k string) string {
			return map[string]string{"OTEL_TRACES_SAMPLER": env[0], "OTEL_TRACES_SAMPLER_ARG": env[1]}[k]
		})
		if err != nil || got != want {
			t.Errorf("sampler %v: %q, %v; want %q", env, got, err, want)
		}
	}
	if _, _, err := sampler(func(k string) string { return map[string]string{"OTEL_TRACES_SAMPLER": "jaeger_remote"}[k] }); err == nil {
		t.Error("unsupported sampler accepted")
	}
}

func TestOTLPTargetFromEnvironment(t *testing.T) {
	t.Parallel()
	tests := []struct {
		env                map[string]string
		signal             string
		protocol, endpoint string
	}{
		{map[string]string{}, "traces", ProtocolHTTPProtobuf, ""},
		{map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}, "traces", ProtocolHTTPProtobuf, "http://c:4318/v1/traces"},
		{map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318/"}, "metrics", ProtocolHTTPProtobuf, "http://c:4318/v1/metrics"},
		{map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, "traces", ProtocolGRPC, "http://c:4317"},
		{map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "grpc",
			"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "https://t:4317"}, "traces", ProtocolGRPC, "https://t:4317"},
		{map[string]string{"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/protobuf",
			"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://t:4318/custom"}, "traces", ProtocolHTTPProtobuf, "http://t:4318/custom"},
	}
	for _, tc := range tests {
		got, err := target(func(k string) string { return tc.env[k] }, tc.signal)
		if err != nil || got.protocol != tc.protocol || got.endpoint != tc.endpoint {
			t.Errorf("%v %s: %+v, %v; want %s %q", tc.env, tc.signal, got, err, tc.protocol, tc.endpoint)
		}
	}
}

func TestUnsupportedOTLPSettingsRefused(t *testing.T) {
	t.Parallel()
	for _, env := range []map[string]string{
		{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"},
		{"OTEL_EXPORTER_OTLP_ENDPOINT": "127.0.0.1:4317", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"},
		{"OTEL_METRICS_EXPORTER": "otlp"},
		{"OTEL_METRICS_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318", "OTEL_METRIC_EXPORT_INTERVAL": "soon"},
	} {
		if _, err := New(context.Background(), Options{Getenv: func(k string) string { return env[k] }}); err == nil {
			t.Errorf("%v accepted", env)
		}
	}
}

func TestRedactorStripsQueriesAndStatements(t *testing.T) {
	t.Parallel()
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(redactor{}), sdktrace.WithSyncer(exp))
	_, span := tp.Tracer("t").Start(context.Background(), "GET", trace.WithAttributes(
		attribute.String("url.full", "https://u:p@ehr.example/Patient?name=Zqcanary#f"),
		attribute.String("url.query", "name=Zqcanary"),
		attribute.String("db.statement", "SELECT 'Zqcanary'"),
	))
	span.End()
	got := exp.GetSpans()[0].Attributes
	for _, a := range got {
		if strings.Contains(a.Value.Emit(), "Zqcanary") || strings.Contains(a.Value.Emit(), "u:p") {
			t.Errorf("%s = %q survived", a.Key, a.Value.Emit())
		}
	}
}

func TestLogHandlerAddsTraceAndSpanIDs(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	log := slog.New(LogHandler(slog.NewJSONHandler(&buf, nil))).With("component", "test")
	tp := sdktrace.NewTracerProvider()
	ctx, span := tp.Tracer("t").Start(context.Background(), "x")
	defer span.End()
	log.InfoContext(ctx, "hello")
	sc := span.SpanContext()
	if !strings.Contains(buf.String(), `"trace_id":"`+sc.TraceID().String()) || !strings.Contains(buf.String(), `"span_id":"`+sc.SpanID().String()) {
		t.Errorf("log line lacks trace and span ids: %s", buf.String())
	}
}
