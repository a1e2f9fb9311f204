package jobs

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// Metadata keys under which a job carries the W3C trace context of the
// request that inserted it.
const (
	metaTraceparent = "traceparent"
	metaTracestate  = "tracestate"
)

// traceMiddleware stores the inserting request's trace context in each
// job's metadata and continues it when the job is worked, so that a
// delivery an hour later is a child span in the trace of the intake that
// caused it.
type traceMiddleware struct {
	river.MiddlewareDefaults
	tracer trace.Tracer
	prop   propagation.TraceContext
}

var (
	_ rivertype.JobInsertMiddleware = (*traceMiddleware)(nil)
	_ rivertype.WorkerMiddleware    = (*traceMiddleware)(nil)
)

func newTraceMiddleware(tp trace.TracerProvider) *traceMiddleware {
	if tp == nil {
		tp = noop.NewTracerProvider()
	}
	return &traceMiddleware{tracer: tp.Tracer("github.com/kapgw/kapgw/internal/jobs")}
}

// InsertMany adds traceparent (and tracestate) to every job's metadata when
// ctx carries a valid span context.
func (m *traceMiddleware) InsertMany(ctx context.Context, params []*rivertype.JobInsertParams,
	doInner func(context.Context) ([]*rivertype.JobInsertResult, error),
) ([]*rivertype.JobInsertResult, error) {
	carrier := propagation.MapCarrier{}
	m.prop.Inject(ctx, carrier)
	if carrier[metaTraceparent] != "" {
		for _, p := range params {
			md, err := withTrace(p.Metadata, carrier)
			if err != nil {
				return nil, fmt.Errorf("%s job metadata: %w", p.Kind, err)
			}
			p.Metadata = md
		}
	}
	return doInner(ctx)
}

// withTrace merges the carrier's keys into a JSON object of metadata.
func withTrace(metadata []byte, carrier propagation.MapCarrier) ([]byte, error) {
	md := map[string]any{}
	if len(metadata) > 0 {
		if err := json.Unmarshal(metadata, &md); err != nil {
			return nil, err
		}
	}
	for _, k := range []string{metaTraceparent, metaTracestate} {
		if v := carrier[k]; v != "" {
			md[k] = v
		}
	}
	return json.Marshal(md)
}

// Work runs the job in a consumer span whose parent is the trace context
// stored at insertion (a new root when there is none). Ids, kind and
// attempt are its only attributes: job arguments can be PHI.
func (m *traceMiddleware) Work(ctx context.Context, job *rivertype.JobRow, doInner func(context.Context) error) error {
	ctx = m.prop.Extract(ctx, metadataCarrier(job.Metadata))
	ctx, span := m.tracer.Start(ctx, "job "+job.Kind, trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithAttributes(
			attribute.String("messaging.system", "river"),
			attribute.String("job.kind", job.Kind),
			attribute.Int64("job.id", job.ID),
			attribute.Int("job.attempt", job.Attempt),
		))
	defer span.End()
	err := doInner(withAttempt(ctx, job.Attempt))
	if err != nil {
		span.SetStatus(codes.Error, "job failed")
	}
	return err
}

// metadataCarrier reads the trace keys of a job's metadata.
func metadataCarrier(metadata []byte) propagation.MapCarrier {
	var md map[string]any
	_ = json.Unmarshal(metadata, &md) // Unreadable metadata only loses the link.
	c := propagation.MapCarrier{}
	for _, k := range []string{metaTraceparent, metaTracestate} {
		if v, ok := md[k].(string); ok {
			c[k] = v
		}
	}
	return c
}

type attemptKey struct{}

func withAttempt(ctx context.Context, n int) context.Context {
	return context.WithValue(ctx, attemptKey{}, n)
}

// Attempt returns the attempt number (1 for the first) of the job ctx is
// working, or 0 outside a job, so the exchange log can number retries.
func Attempt(ctx context.Context) int {
	n, _ := ctx.Value(attemptKey{}).(int)
	return n
}
