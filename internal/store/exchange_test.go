package store

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"
)

// TestExchangesSQLite and TestExchangesPostgres run the exchange log on
// both databases.
func TestExchangesSQLite(t *testing.T) {
	t.Parallel()
	testExchanges(t, openSQLiteTest)
}

func TestExchangesPostgres(t *testing.T) {
	t.Parallel()
	testExchanges(t, openPostgresTest)
}

func testExchanges(t *testing.T, open opener) {
	ctx := context.Background()
	s := migrated(t, open, newClock().now)
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	rows := []Exchange{
		{At: t0, Kind: "intake", Direction: "in", TraceID: "t1", EpisodeID: "ep-1", PartnerID: "clinic", Status: "ok", Code: "200", Payload: "local:v1:AAAA"},
		{At: t0.Add(time.Minute), Kind: "pharmacy", Direction: "out", TraceID: "t1", EpisodeID: "ep-1", Refs: []string{"MedicationRequest/mr-1"}, Operation: "NewRx", Status: "unknown", Attempt: 2, Duration: 1500 * time.Millisecond, ErrorClass: "timeout"},
		{At: t0.Add(2 * time.Minute), Kind: "pull", Direction: "in", TraceID: "t2", PartnerID: "ehr-a", Refs: []string{"Patient/p1", "Observation/o1"}, Status: "ok", Code: "200", Payload: "local:v1:BBBB"},
	}
	if err := s.AddExchanges(ctx, nil); err != nil {
		t.Fatal(err)
	}
	var ids []int64
	for _, e := range rows[:1] {
		id, err := s.AddExchange(ctx, e)
		if err != nil {
			t.Fatalf("AddExchange: %v", err)
		}
		ids = append(ids, id)
	}
	if err := s.AddExchanges(ctx, rows[1:]); err != nil {
		t.Fatalf("AddExchanges: %v", err)
	}
	ids = append(ids, ids[0]+1, ids[0]+2)
	list := func(f ExchangeFilter) []int64 {
		t.Helper()
		got, err := s.Exchanges(ctx, f)
		if err != nil {
			t.Fatalf("Exchanges(%+v): %v", f, err)
		}
		var out []int64
		for _, e := range got {
			if e.Payload != "" {
				t.Fatalf("listing carries a payload")
			}
			out = append(out, e.ID)
		}
		return out
	}
	checks := []struct {
		f    ExchangeFilter
		want []int64
	}{
		{ExchangeFilter{}, []int64{ids[2], ids[1], ids[0]}},
		{ExchangeFilter{TraceID: "t1"}, []int64{ids[1], ids[0]}},
		{ExchangeFilter{EpisodeID: "ep-1", Status: "unknown"}, []int64{ids[1]}},
		{ExchangeFilter{PartnerID: "ehr-a"}, []int64{ids[2]}},
		{ExchangeFilter{Since: t0.Add(30 * time.Second)}, []int64{ids[2], ids[1]}},
		{ExchangeFilter{Limit: 1, Before: ids[2]}, []int64{ids[1]}},
	}
	for _, c := range checks {
		if got := list(c.f); !slices.Equal(got, c.want) {
			t.Errorf("Exchanges(%+v) = %v, want %v", c.f, got, c.want)
		}
	}
	e, err := s.ExchangeByID(ctx, ids[1])
	if err != nil {
		t.Fatalf("ExchangeByID: %v", err)
	}
	if e.Attempt != 2 || e.Duration != 1500*time.Millisecond || e.ErrorClass != "timeout" || !slices.Equal(e.Refs, rows[1].Refs) || e.HasPayload || !e.At.Equal(rows[1].At) {
		t.Errorf("ExchangeByID = %+v", e)
	}
	e, err = s.ExchangeByID(ctx, ids[0])
	if err != nil || e.Payload != "local:v1:AAAA" || !e.HasPayload {
		t.Errorf("ExchangeByID payload = %q %v, %v", e.Payload, e.HasPayload, err)
	}
	// A batch keeps its rows' order and a payload next to a row without one.
	e, err = s.ExchangeByID(ctx, ids[2])
	if err != nil || e.Payload != "local:v1:BBBB" || !e.HasPayload || e.Kind != "pull" {
		t.Errorf("ExchangeByID(batched with payload) = %+v, %v", e, err)
	}
	if _, err := s.ExchangeByID(ctx, ids[2]+100); !errors.Is(err, ErrNotFound) {
		t.Errorf("ExchangeByID(missing) = %v, want ErrNotFound", err)
	}
	n, err := s.DeleteExchangesBefore(ctx, t0.Add(90*time.Second))
	if err != nil || n != 2 {
		t.Fatalf("DeleteExchangesBefore = %d, %v; want 2", n, err)
	}
	if got := list(ExchangeFilter{}); !slices.Equal(got, []int64{ids[2]}) {
		t.Errorf("after retention: %v", got)
	}
}
