package telemetry

import (
	"context"
	"encoding/binary"
	"math/rand/v2"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// timeOrderedIDs generates the ids of the traces the gateway starts itself
// (a request that arrives without a traceparent, a background job): the
// first 6 bytes of a trace id are the Unix time in milliseconds, the other
// 10 bytes (80 bits) random, as AWS X-Ray's ids lead with the time. Every
// exchange row is indexed by its trace id; random ids put each new row on a
// random page of that index, so every commit of the exchange log rewrote a
// page per row (about 60 MB/s of disk writes at 5,000 reads/s on SQLite),
// where ids made close in time share the index's right edge. The random
// part covers the 8 rightmost bytes that OpenTelemetry's TraceIDRatioBased
// sampler reads, so ratio sampling stays uniform. A trace id that arrives
// in a traceparent is kept as it is.
type timeOrderedIDs struct{}

// NewIDs returns a new trace id and the id of its root span.
func (g timeOrderedIDs) NewIDs(context.Context) (trace.TraceID, trace.SpanID) {
	var t trace.TraceID
	var ms [8]byte
	binary.BigEndian.PutUint64(ms[:], uint64(time.Now().UnixMilli()))
	copy(t[:6], ms[2:])
	binary.BigEndian.PutUint16(t[6:8], uint16(rand.Uint32()))
	binary.BigEndian.PutUint64(t[8:], nonZero())
	return t, g.NewSpanID(context.Background(), t)
}

// NewSpanID returns a new span id within trace id.
func (timeOrderedIDs) NewSpanID(context.Context, trace.TraceID) trace.SpanID {
	var s trace.SpanID
	binary.BigEndian.PutUint64(s[:], nonZero())
	return s
}

// nonZero returns a random uint64 other than 0, so that a span id (and the
// random half of a trace id) is never all zeros, which W3C Trace Context
// forbids.
func nonZero() uint64 {
	for {
		if v := rand.Uint64(); v != 0 {
			return v
		}
	}
}

// IDGenerator returns the trace and span id generator of the gateway's
// tracer provider, for a harness that builds its own provider (a benchmark
// with a discarding batch exporter) and should make the ids kapgw serve
// makes.
func IDGenerator() sdktrace.IDGenerator { return timeOrderedIDs{} }
