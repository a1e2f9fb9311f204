package exchange_test

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/kapgw/kapgw/internal/exchange"
	"github.com/kapgw/kapgw/internal/secrets"
	"github.com/kapgw/kapgw/internal/store"
	"github.com/kapgw/kapgw/pharmacy"
)

func newRecorder(t *testing.T) (*exchange.Recorder, *store.Store) {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	st, err := store.Open(ctx, store.Config{DataDir: filepath.Join(dir, "data")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	dev, err := secrets.OpenDevStore(ctx, log, dir)
	if err != nil {
		t.Fatal(err)
	}
	c, err := dev.Cipher(ctx, secrets.ExchangeKey)
	if err != nil {
		t.Fatal(err)
	}
	return exchange.New(st, c, log, nil), st
}

func TestPayloadIsEncryptedAndItsViewingRecorded(t *testing.T) {
	t.Parallel()
	r, st := newRecorder(t)
	tp := sdktrace.NewTracerProvider()
	ctx, span := tp.Tracer("test").Start(context.Background(), "request")
	defer span.End()
	id, err := r.Record(ctx, store.Exchange{Kind: exchange.KindIntake, Direction: exchange.In, EpisodeID: "ep-1", Status: "ok"},
		[]byte(`{"patient":{"name":"Canary Person"}}`))
	if err != nil {
		t.Fatal(err)
	}
	stored, err := st.ExchangeByID(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if !stored.HasPayload || strings.Contains(stored.Payload, "Canary") {
		t.Fatalf("stored payload %q is missing or in the clear", stored.Payload)
	}
	if stored.TraceID != span.SpanContext().TraceID().String() {
		t.Errorf("trace id %q, want the span's", stored.TraceID)
	}
	got, err := r.Payload(context.Background(), id, "admin-1")
	if err != nil || !strings.Contains(string(got), "Canary Person") {
		t.Fatalf("Payload = %q, %v", got, err)
	}
	views, err := st.Exchanges(context.Background(), store.ExchangeFilter{PartnerID: "admin-1"})
	if err != nil || len(views) != 1 || views[0].Kind != exchange.KindAdmin || views[0].EpisodeID != "ep-1" {
		t.Fatalf("admin views = %+v, %v", views, err)
	}
}

func TestJournalRecordsWireStepsOnly(t *testing.T) {
	t.Parallel()
	r, st := newRecorder(t)
	ctx := context.Background()
	j := r.Journal()
	for _, s := range []pharmacy.Step{
		{PrescriptionID: "rx-1", Message: "NewRx", Step: pharmacy.StepQueued},
		{PrescriptionID: "mr-1", MessageID: "m-1", Message: "RxFill", Step: pharmacy.StepShipped, Duration: 1500 * time.Millisecond},
	} {
		if err := j.Record(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	got, err := st.Exchanges(ctx, store.ExchangeFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Direction != exchange.In || got[0].Status != pharmacy.StepShipped ||
		got[0].Refs[0] != "MedicationRequest/mr-1" || got[0].Operation != "RxFill m-1" ||
		got[0].PartnerID != "pharmacy" || got[0].Duration != 1500*time.Millisecond {
		t.Fatalf("exchanges = %+v", got)
	}
}

func TestBatchedRowsAreAllWrittenByClose(t *testing.T) {
	t.Parallel()
	r, st := newRecorder(t)
	r.StartBatching(1024, 0)
	ctx := context.Background()
	for range 300 {
		if err := r.Enqueue(ctx, store.Exchange{Kind: exchange.KindPull, Direction: exchange.In, PartnerID: "ehr-a", Status: "ok"}, nil); err != nil {
			t.Fatal(err)
		}
	}
	r.Close()
	if err := r.Enqueue(ctx, store.Exchange{Kind: exchange.KindPull, Direction: exchange.In, PartnerID: "ehr-a", Status: "ok"}, nil); err != nil {
		t.Fatalf("Enqueue after Close: %v", err)
	}
	got, err := st.Exchanges(ctx, store.ExchangeFilter{Limit: 1000})
	if err != nil || len(got) != 301 {
		t.Fatalf("%d rows, want 301 (%v)", len(got), err)
	}
}

// TestQueuedRowsRideAlongOrAreFlushed: with a flush interval, rows wait in
// the queue where a group commit can Take them; rows given back after a
// failed commit, and rows nobody takes, are still written.
func TestQueuedRowsRideAlongOrAreFlushed(t *testing.T) {
	t.Parallel()
	r, st := newRecorder(t)
	r.StartBatching(1024, time.Hour)
	ctx := context.Background()
	row := store.Exchange{Kind: exchange.KindPull, Direction: exchange.In, PartnerID: "ehr-a", Status: "ok"}
	for range 10 {
		if err := r.Enqueue(ctx, row, nil); err != nil {
			t.Fatal(err)
		}
	}
	taken := r.Take(4)
	if len(taken) != 4 {
		t.Fatalf("took %d rows, want 4", len(taken))
	}
	if got, _ := st.Exchanges(ctx, store.ExchangeFilter{}); len(got) != 0 {
		t.Fatalf("%d rows written before the interval", len(got))
	}
	if err := st.AddAuditEventsAndExchanges(ctx, nil, taken[:2]); err != nil {
		t.Fatal(err)
	}
	r.Return(taken[2:])
	r.Close()
	got, err := st.Exchanges(ctx, store.ExchangeFilter{Limit: 100})
	if err != nil || len(got) != 10 {
		t.Fatalf("%d rows written, want 10 (%v)", len(got), err)
	}
	if rows := r.Take(5); len(rows) != 0 {
		t.Errorf("took %d rows after Close", len(rows))
	}
}
