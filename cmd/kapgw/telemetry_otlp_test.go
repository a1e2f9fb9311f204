package main

import (
	"context"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	metricsv1 "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	tracev1 "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/grpc"
)

// otlpReceiver is a real OTLP/gRPC endpoint on loopback that keeps what it
// is sent: the span names with their trace ids, and the metric names.
type otlpReceiver struct {
	tracev1.UnimplementedTraceServiceServer
	metricsv1.UnimplementedMetricsServiceServer

	mu      sync.Mutex
	spans   map[string]string // span name -> hex trace id
	metrics map[string]bool
	got     chan struct{} // signalled after every export
}

func (r *otlpReceiver) Export(_ context.Context, req *tracev1.ExportTraceServiceRequest) (*tracev1.ExportTraceServiceResponse, error) {
	r.mu.Lock()
	for _, rs := range req.GetResourceSpans() {
		for _, ss := range rs.GetScopeSpans() {
			for _, s := range ss.GetSpans() {
				r.spans[s.GetName()] = hexID(s.GetTraceId())
			}
		}
	}
	r.mu.Unlock()
	r.signal()
	return &tracev1.ExportTraceServiceResponse{}, nil
}

// metricsService adapts the receiver to the metrics service, whose Export
// has another signature.
type metricsService struct{ *otlpReceiver }

func (m metricsService) Export(_ context.Context, req *metricsv1.ExportMetricsServiceRequest) (*metricsv1.ExportMetricsServiceResponse, error) {
	m.mu.Lock()
	for _, rm := range req.GetResourceMetrics() {
		for _, sm := range rm.GetScopeMetrics() {
			for _, x := range sm.GetMetrics() {
				m.metrics[x.GetName()] = true
			}
		}
	}
	m.mu.Unlock()
	m.signal()
	return &metricsv1.ExportMetricsServiceResponse{}, nil
}

func (r *otlpReceiver) signal() {
	select {
	case r.got <- struct{}{}:
	default:
	}
}

func hexID(b []byte) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 0, 2*len(b))
	for _, c := range b {
		out = append(out, digits[c>>4], digits[c&15])
	}
	return string(out)
}

// startOTLPReceiver serves OTLP/gRPC traces and metrics on 127.0.0.1 and
// returns the receiver and its endpoint URL.
func startOTLPReceiver(t *testing.T) (*otlpReceiver, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &otlpReceiver{spans: map[string]string{}, metrics: map[string]bool{}, got: make(chan struct{}, 1)}
	srv := grpc.NewServer()
	tracev1.RegisterTraceServiceServer(srv, r)
	metricsv1.RegisterMetricsServiceServer(srv, metricsService{r})
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(srv.Stop)
	return r, "http://" + ln.Addr().String()
}

// waitFor polls the receiver until ok holds or 20s pass.
func (r *otlpReceiver) waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		r.mu.Lock()
		done := ok()
		r.mu.Unlock()
		if done {
			return
		}
		select {
		case <-r.got:
		case <-time.After(100 * time.Millisecond):
		case <-deadline:
			t.Fatalf("the OTLP/gRPC receiver got no %s within 20s (spans %v)", what, r.spans)
		}
	}
}

// TestServeExportsOverOTLPGRPC starts the gateway with
// OTEL_EXPORTER_OTLP_PROTOCOL=grpc pointed at a real OTLP/gRPC receiver:
// the server span of a request arrives with the caller's trace id, and
// with OTEL_METRICS_EXPORTER=otlp the request duration metric arrives too.
func TestServeExportsOverOTLPGRPC(t *testing.T) {
	t.Parallel()
	recv, endpoint := startOTLPReceiver(t)
	env := map[string]string{
		"OTEL_EXPORTER_OTLP_ENDPOINT": endpoint, "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
		"OTEL_METRICS_EXPORTER": "otlp", "OTEL_METRIC_EXPORT_INTERVAL": "200",
	}
	g, logs := startHooked(t, hooks{}, func(k string) string { return env[k] }, "--data-dir", t.TempDir())
	if !strings.Contains(logs.String(), `"exporting":true`) {
		t.Fatalf("telemetry not exporting: %.500s", logs.String())
	}
	const traceID = "0af7651916cd43dd8448eb211c80319c"
	req, _ := http.NewRequest(http.MethodGet, g.base+"/readyz", nil)
	req.Header.Set("traceparent", "00-"+traceID+"-b7ad6b7169203331-01")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	recv.waitFor(t, "server span of GET /readyz", func() bool { return recv.spans["GET /readyz"] == traceID })
	recv.waitFor(t, "http.server.request.duration metric", func() bool { return recv.metrics["http.server.request.duration"] })
}
