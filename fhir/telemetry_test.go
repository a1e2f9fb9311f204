package fhir_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/kapgw/kapgw/fhir"
	"github.com/kapgw/kapgw/internal/intake"
	"github.com/kapgw/kapgw/internal/kap/kaptest"
	"github.com/kapgw/kapgw/internal/store"
	"github.com/kapgw/kapgw/internal/telemetry"
)

// lockedBuffer is a log sink safe for concurrent handlers.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// canaries are unique strings put into every identifying field of the
// patient.
var canaries = map[string]string{
	"given": "Zqcanarygiven", "family": "Zqcanaryfamily", "birthDate": "1931-07-23",
	"line": "4417 Zqcanaryline Lane", "city": "Zqcanarycity", "phone": "+1-555-914-2871",
	"mrn": "MRNZQ77310", "email": "zqcanary.mail@example.org",
}

// canaryEpisode is the home-dosing example with the patient's identifying
// values replaced by canaries.
func canaryEpisode(t *testing.T) ([]byte, string) {
	t.Helper()
	var ep map[string]any
	if err := json.Unmarshal(kaptest.Example("home-dosing"), &ep); err != nil {
		t.Fatal(err)
	}
	p := ep["patient"].(map[string]any)
	p["name"] = map[string]any{"given": []any{canaries["given"]}, "family": canaries["family"]}
	p["birthDate"] = canaries["birthDate"]
	addr := p["address"].(map[string]any)
	addr["line"] = []any{canaries["line"]}
	addr["city"] = canaries["city"]
	p["phone"], p["mrn"], p["email"] = canaries["phone"], canaries["mrn"], canaries["email"]
	b, err := json.Marshal(ep)
	if err != nil {
		t.Fatal(err)
	}
	return b, ep["id"].(string)
}

// TestTelemetryCarriesNoPHI runs the whole flow (token, intake, reads,
// bundle, errors) on a canary episode with tracing, metrics and the tracing
// log handler on, and fails if any canary reaches a span, a metric or a log
// line. It also checks one request is one trace: the caller's trace id comes
// back in traceparent, and the database spans and log lines belong to it.
func TestTelemetryCarriesNoPHI(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	spans := tracetest.NewInMemoryExporter()
	reader := sdkmetric.NewManualReader()
	tel, err := telemetry.New(ctx, telemetry.Options{SpanExporter: spans, MetricReader: reader})
	if err != nil {
		t.Fatal(err)
	}
	logs := &lockedBuffer{}
	log := slog.New(telemetry.LogHandler(slog.NewJSONHandler(logs, nil)))
	st, err := store.Open(ctx, store.Config{DataDir: t.TempDir(), Tracer: tel.TracerProvider}, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	srv := startAuthed(t, st, fhir.Options{
		Log: log, Intake: intake.New(st, time.Now, ""), Reader: st, Ready: st, MaxBodyBytes: maxBody, Now: time.Now,
		Telemetry: fhir.Telemetry{Tracer: tel.TracerProvider, Meter: tel.MeterProvider, Propagator: tel.Propagator},
	})

	doc, id := canaryEpisode(t)
	resp, body := send(t, srv, http.MethodPut, "/kap/v1/episodes/"+id, "application/json", doc)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("PUT canary episode: status %d, body %s", resp.StatusCode, body)
	}
	var put struct{ Resources []struct{ Reference string } }
	if err := json.Unmarshal(body, &put); err != nil {
		t.Fatal(err)
	}
	var patient string
	for _, r := range put.Resources {
		if strings.HasPrefix(r.Reference, "Patient/") {
			patient = r.Reference
		}
	}
	const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/fhir/r4/"+patient+"?name="+canaries["family"], nil)
	req.Header.Set("traceparent", "00-"+traceID+"-00f067aa0ba902b7-01")
	r2, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	rb, _ := io.ReadAll(r2.Body)
	r2.Body.Close()
	if r2.StatusCode != http.StatusOK || !bytes.Contains(rb, []byte(canaries["family"])) {
		t.Fatalf("read %s: status %d; the body should hold the canary name", patient, r2.StatusCode)
	}
	if tp := r2.Header.Get("traceparent"); !strings.HasPrefix(tp, "00-"+traceID+"-") || r2.Header.Get("X-Request-Id") == "" {
		t.Errorf("response traceparent %q (want trace %s) and X-Request-Id %q", tp, traceID, r2.Header.Get("X-Request-Id"))
	}
	send(t, srv, http.MethodGet, "/kap/v1/episodes/"+id+"/fhir", "", nil)
	send(t, srv, http.MethodGet, "/kap/v1/episodes/"+id, "", nil)
	send(t, srv, http.MethodPut, "/kap/v1/episodes/"+id, "application/json", bytes.Replace(doc, []byte(`"sex":"female"`), []byte(`"sex":"`+canaries["family"]+`"`), 1))
	send(t, srv, http.MethodGet, "/no/route/"+canaries["mrn"], "", nil)
	if resp, _ := send(t, srv, http.MethodGet, "/metrics", "", nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("/metrics on the API listener: %d, want 404 (it has a listener of its own)", resp.StatusCode)
	}
	rec := httptest.NewRecorder()
	tel.Metrics.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	promText := rec.Body.Bytes()

	checkSpans(t, spans.GetSpans(), traceID)
	checkMetrics(t, reader, promText)
	assertNoCanary(t, "logs", logs.String())
	if !strings.Contains(logs.String(), `"trace_id":"`+traceID+`"`) {
		t.Errorf("no log line carries trace_id %s", traceID)
	}
}

// checkSpans fails on a canary in any span name, attribute, event or status,
// and checks the read's trace: one server span named by route template, and
// database spans in the same trace.
func checkSpans(t *testing.T, spans tracetest.SpanStubs, traceID string) {
	t.Helper()
	var readServer, dbInTrace int
	for _, s := range spans {
		text := s.Name + " " + s.Status.Description
		for _, a := range s.Attributes {
			text += " " + string(a.Key) + "=" + a.Value.Emit()
		}
		for _, e := range s.Events {
			text += " " + e.Name
			for _, a := range e.Attributes {
				text += " " + string(a.Key) + "=" + a.Value.Emit()
			}
		}
		assertNoCanary(t, "span "+s.Name, text)
		if s.SpanContext.TraceID().String() != traceID {
			continue
		}
		switch {
		case s.Name == "GET /fhir/r4/:type/:id":
			readServer++
		case s.InstrumentationScope.Name == "github.com/XSAM/otelsql":
			dbInTrace++
		}
	}
	if readServer != 1 || dbInTrace == 0 {
		t.Errorf("trace %s: %d server spans named by route template (want 1), %d database spans (want some); %d spans in all",
			traceID, readServer, dbInTrace, len(spans))
	}
}

// checkMetrics fails on a canary in any metric name or attribute, in the
// SDK's view and on /metrics, and checks the duration by route template.
func checkMetrics(t *testing.T, reader *sdkmetric.ManualReader, promText []byte) {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	var text strings.Builder
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			text.WriteString(m.Name + " ")
			if h, ok := m.Data.(metricdata.Histogram[float64]); ok {
				for _, dp := range h.DataPoints {
					for _, a := range dp.Attributes.ToSlice() {
						text.WriteString(string(a.Key) + "=" + a.Value.Emit() + " ")
					}
				}
			}
		}
	}
	assertNoCanary(t, "metrics", text.String())
	assertNoCanary(t, "/metrics", string(promText))
	if !strings.Contains(text.String(), "http.route=/fhir/r4/:type/:id") ||
		!bytes.Contains(promText, []byte(`http_route="/fhir/r4/:type/:id"`)) {
		t.Errorf("request duration by route template missing; /metrics:\n%.3000s", promText)
	}
}

func assertNoCanary(t *testing.T, where, text string) {
	t.Helper()
	for field, c := range canaries {
		if strings.Contains(text, c) {
			t.Errorf("%s holds the canary %s", where, field)
		}
	}
}
