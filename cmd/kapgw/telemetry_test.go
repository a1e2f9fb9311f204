package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// syncBuffer is a log sink safe for the gateway's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startHooked runs `kapgw serve` through runWith with test hooks, keeping
// every log line in logs.
func startHooked(t *testing.T, h hooks, getenv func(string) string, flags ...string) (*gateway, *syncBuffer) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	logs := &syncBuffer{}
	pr, pw := io.Pipe()
	args := append([]string{"kapgw", "serve", "--addr", "127.0.0.1:0", "--metrics-addr", "127.0.0.1:0"}, flags...)
	g := &gateway{done: make(chan error, 1), stop: cancel}
	go func() {
		err := runWith(ctx, args, getenv, io.MultiWriter(pw, logs), io.Discard, h)
		pw.CloseWithError(fmt.Errorf("run returned: %v", err))
		g.done <- err
	}()
	addr, metricsAddr := make(chan string, 1), make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			var line struct{ Msg, Addr string }
			if json.Unmarshal(sc.Bytes(), &line) != nil {
				continue
			}
			switch line.Msg {
			case "listening":
				addr <- line.Addr
			case "metrics listening":
				metricsAddr <- line.Addr
			}
		}
	}()
	select {
	case a := <-addr:
		g.base = "http://" + a
		select { // logged before the API listener's line
		case m := <-metricsAddr:
			g.metrics = "http://" + m
		default:
		}
	case err := <-g.done:
		t.Fatalf("gateway exited before listening: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("gateway did not start listening within 30s")
	}
	t.Cleanup(func() {
		cancel()
		if err := <-g.done; err != nil {
			t.Errorf("gateway exit: %v", err)
		}
	})
	waitReady(t, g.base)
	return g, logs
}

// TestServeTracesRequests starts the real gateway with Vault configured and
// an in-memory span exporter: a request continuing a caller's traceparent
// gets it back, its database spans join the trace, its log lines carry the
// trace id, and /metrics serves request durations by route template. (The
// canary flow through intake is TestTelemetryCarriesNoPHI in fhir.)
func TestServeTracesRequests(t *testing.T) {
	t.Parallel()
	spans := tracetest.NewInMemoryExporter()
	addr, token := os.Getenv("KAPGW_TEST_VAULT_ADDR"), os.Getenv("KAPGW_TEST_VAULT_TOKEN")
	if addr == "" || token == "" {
		t.Fatal("KAPGW_TEST_VAULT_ADDR and KAPGW_TEST_VAULT_TOKEN must be set; run scripts/test.sh")
	}
	env := map[string]string{"KAPGW_VAULT_ADDR": addr, "KAPGW_VAULT_TOKEN": token}
	g, logs := startHooked(t, hooks{spans: spans, metrics: sdkmetric.NewManualReader()},
		func(k string) string { return env[k] }, "--data-dir", t.TempDir(), "--log-level", "debug")

	const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	req, _ := http.NewRequest(http.MethodGet, g.base+"/readyz", nil)
	req.Header.Set("traceparent", "00-"+traceID+"-00f067aa0ba902b7-01")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if tp := resp.Header.Get("traceparent"); !strings.HasPrefix(tp, "00-"+traceID+"-") || resp.Header.Get("X-Request-Id") == "" {
		t.Errorf("readyz: traceparent %q, X-Request-Id %q", tp, resp.Header.Get("X-Request-Id"))
	}
	if resp, _ := g.do(t, http.MethodGet, "/metrics", "", nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("/metrics on the API listener: %d, want 404", resp.StatusCode)
	}
	resp, prom := g.scrape(t)
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") ||
		!bytes.Contains(prom, []byte(`http_server_request_duration_seconds_count{`)) || !bytes.Contains(prom, []byte(`http_route="/readyz"`)) {
		t.Errorf("metrics listener: %d %q, no request duration for /readyz:\n%.2000s", resp.StatusCode, resp.Header.Get("Content-Type"), prom)
	}
	var server, db, vault int
	for _, s := range spans.GetSpans() {
		switch {
		case s.Name == "GET /readyz" && s.SpanContext.TraceID().String() == traceID:
			server++
		case s.InstrumentationScope.Name == "github.com/XSAM/otelsql" && s.SpanContext.TraceID().String() == traceID:
			db++
		case strings.HasPrefix(s.InstrumentationScope.Name, "go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"):
			vault++
		}
	}
	if server != 1 || db == 0 || vault == 0 {
		t.Errorf("spans: %d server spans of the trace (want 1), %d database spans in it, %d Vault client spans", server, db, vault)
	}
	if !strings.Contains(logs.String(), `"trace_id":"`+traceID+`"`) {
		t.Errorf("no log line carries trace_id %s", traceID)
	}
}

// scrape gets /metrics from the gateway's metrics listener.
func (g *gateway) scrape(t *testing.T) (*http.Response, []byte) {
	t.Helper()
	if g.metrics == "" {
		t.Fatal("the gateway logged no metrics listener")
	}
	resp, err := http.Get(g.metrics + "/metrics")
	if err != nil {
		t.Fatalf("scrape: %v", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

func TestMetricsListenerOff(t *testing.T) {
	t.Parallel()
	g, logs := startHooked(t, hooks{}, func(string) string { return "" }, "--data-dir", t.TempDir(), "--metrics-addr", "off")
	if g.metrics != "" || !strings.Contains(logs.String(), "metrics endpoint off") {
		t.Errorf("metrics listener %q with --metrics-addr off", g.metrics)
	}
	if resp, _ := g.do(t, http.MethodGet, "/metrics", "", nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("/metrics on the API listener: %d, want 404", resp.StatusCode)
	}
}
