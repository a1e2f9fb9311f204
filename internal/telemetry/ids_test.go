package telemetry

import (
	"bytes"
	"context"
	"encoding/binary"
	"testing"
	"time"

	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// TestTraceIDsLeadWithTheTime checks that the traces the gateway starts
// have ids that sort by the millisecond they began in, are distinct within
// one millisecond, and never have an all-zero span id or random part; and
// that a trace id arriving in a traceparent is kept.
func TestTraceIDsLeadWithTheTime(t *testing.T) {
	t.Parallel()
	tel, err := New(context.Background(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer tel.Shutdown(context.Background())
	tracer := tel.TracerProvider.Tracer("t")

	before := time.Now().UnixMilli()
	seen := make(map[trace.TraceID]bool)
	var prev trace.TraceID
	for i := range 2000 {
		_, span := tracer.Start(context.Background(), "x")
		sc := span.SpanContext()
		span.End()
		id := sc.TraceID()
		var ms [8]byte
		copy(ms[2:], id[:6])
		at := int64(binary.BigEndian.Uint64(ms[:]))
		if at < before || at > time.Now().UnixMilli() {
			t.Fatalf("span %d: trace id %s starts with %d ms, want the time it was made (from %d)", i, id, at, before)
		}
		if i > 0 && bytes.Compare(id[:6], prev[:6]) < 0 {
			t.Fatalf("span %d: trace id %s sorts before the earlier %s", i, id, prev)
		}
		if seen[id] {
			t.Fatalf("span %d: trace id %s made twice", i, id)
		}
		if binary.BigEndian.Uint64(id[8:]) == 0 || !sc.SpanID().IsValid() {
			t.Fatalf("span %d: trace id %s, span id %s: a zero random part", i, id, sc.SpanID())
		}
		seen[id], prev = true, id
	}

	const incoming = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	ctx := propagation.TraceContext{}.Extract(context.Background(),
		propagation.MapCarrier{"traceparent": incoming})
	_, span := tracer.Start(ctx, "child")
	defer span.End()
	if got := span.SpanContext().TraceID().String(); got != "4bf92f3577b34da6a3ce929d0e0e4736" {
		t.Errorf("child of an incoming traceparent has trace id %s, want the caller's", got)
	}
}
