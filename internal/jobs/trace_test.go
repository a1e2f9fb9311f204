package jobs_test

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/riverqueue/river"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/kapgw/kapgw/internal/jobs"
	"github.com/kapgw/kapgw/internal/store"
)

// attemptWorker records the attempt number it saw in its context.
type attemptWorker struct {
	river.WorkerDefaults[noteArgs]
	seen chan int
}

func (w *attemptWorker) Work(ctx context.Context, _ *river.Job[noteArgs]) error {
	w.seen <- jobs.Attempt(ctx)
	return nil
}

// TestJobContinuesInsertingTrace: a job inserted under a request's span is
// worked in a child span of it, in the same trace, on both databases.
func TestJobContinuesInsertingTrace(t *testing.T) {
	t.Parallel()
	for _, dialect := range []string{"sqlite", "postgres"} {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			st := openStore(t, dialect)
			if err := jobs.Migrate(ctx, st); err != nil {
				t.Fatal(err)
			}
			exp := tracetest.NewInMemoryExporter()
			tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
			t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
			w := &attemptWorker{seen: make(chan int, 1)}
			workers := river.NewWorkers()
			river.AddWorker(workers, w)
			q, err := jobs.New(st, slog.New(slog.NewTextHandler(io.Discard, nil)),
				jobs.Config{Workers: workers, FetchPollInterval: 50 * time.Millisecond, TracerProvider: tp})
			if err != nil {
				t.Fatal(err)
			}
			if err := q.Start(ctx); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = q.Stop(context.Background()) })

			reqCtx, req := tp.Tracer("test").Start(ctx, "PUT /kap/v1/episodes/:id")
			insert := func(ctx context.Context, tx store.Tx, _ store.ApplyResult) error {
				return q.InsertTx(ctx, tx, noteArgs{Note: "traced"}, nil)
			}
			if _, err := st.ApplyEpisodeTx(reqCtx, "ep-1", change("traced"), insert); err != nil {
				t.Fatal(err)
			}
			req.End()
			select {
			case n := <-w.seen:
				if n != 1 {
					t.Errorf("Attempt in worker = %d, want 1", n)
				}
			case <-time.After(20 * time.Second):
				t.Fatal("job not worked")
			}
			var job *tracetest.SpanStub
			deadline := time.Now().Add(5 * time.Second)
			for job == nil && time.Now().Before(deadline) {
				for _, s := range exp.GetSpans() {
					if s.Name == "job note" {
						job = &s
					}
				}
				time.Sleep(10 * time.Millisecond)
			}
			if job == nil {
				t.Fatal("no job span exported")
			}
			want := req.SpanContext()
			if job.SpanContext.TraceID() != want.TraceID() || job.Parent.SpanID() != want.SpanID() {
				t.Errorf("job span trace %s parent %s, want trace %s parent %s",
					job.SpanContext.TraceID(), job.Parent.SpanID(), want.TraceID(), want.SpanID())
			}
			if job.SpanKind != trace.SpanKindConsumer {
				t.Errorf("job span kind = %v, want consumer", job.SpanKind)
			}
		})
	}
}
