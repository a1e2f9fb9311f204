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

func TestGRPCProtocolRefused(t *testing.T) {
	t.Parallel()
	env := map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4317", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}
	if _, err := New(context.Background(), Options{Getenv: func(k string) string { return env[k] }}); err == nil || !strings.Contains(err.Error(), "http/protobuf") {
		t.Errorf("grpc protocol: err %v, want a refusal naming http/protobuf", err)
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
