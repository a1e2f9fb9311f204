package audit_test

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/kapgw/kapgw/internal/audit"
	"github.com/kapgw/kapgw/internal/fhirvalid"
	"github.com/kapgw/kapgw/internal/store"
)

func TestAuditEventsValidate(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	var bodies [][]byte
	for _, a := range []audit.Access{
		{ClientID: "ehr-a", Interaction: "read", Status: 200, Patients: []string{"p1"}, Entries: []audit.Entry{{Ref: "Observation/o1", Patient: "p1"}}, At: at},
		{ClientID: "ehr-a", Interaction: "search-type", Status: 200, Patients: []string{"p1", "p2"}, Entries: []audit.Entry{{Ref: "Patient/p1", Patient: "p1"}, {Ref: "Patient/p2", Patient: "p2"}, {Ref: "Practitioner/d1"}}, At: at},
		{ClientID: "ehr-b", Interaction: "operation", Status: 404, At: at},
	} {
		recs, err := audit.Records(a)
		if err != nil {
			t.Fatal(err)
		}
		if want := max(len(a.Patients), 1); len(recs) != want {
			t.Fatalf("%d records for %d patients", len(recs), len(a.Patients))
		}
		for _, r := range recs {
			bodies = append(bodies, r.Body)
		}
	}
	fhirvalid.New(t).Check(t, bodies...)
	var ev struct {
		Action, Outcome string
		Agent           []struct {
			Who struct{ Identifier struct{ Value string } }
		}
		Entity []struct{ What struct{ Reference string } }
	}
	if err := json.Unmarshal(bodies[1], &ev); err != nil {
		t.Fatal(err)
	}
	if ev.Action != "E" || ev.Outcome != "0" || ev.Agent[0].Who.Identifier.Value != "ehr-a" || len(ev.Entity) != 2 || ev.Entity[0].What.Reference != "Patient/p1" || ev.Entity[1].What.Reference != "Practitioner/d1" {
		t.Errorf("search AuditEvent for p1 = %s", bodies[1])
	}
}

func TestWriterGroupCommitsConcurrentAccesses(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := openDB(t, filepath.Join(t.TempDir(), "data"))
	counting := &countingStore{Store: st}
	w := audit.NewWriter(counting, nil, audit.Options{})
	const n = 200
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			errs <- w.Record(ctx, audit.Access{ClientID: "ehr-a", Interaction: "read", Status: 200, Patients: []string{"p" + string(rune('a'+i%26))}})
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	got, err := st.AuditEvents(ctx, store.AuditFilter{Limit: 1000})
	if err != nil || len(got) != n {
		t.Fatalf("%d audit events durable, want %d (%v)", len(got), n, err)
	}
	if c := counting.commits(); c >= n {
		t.Errorf("%d commits for %d accesses: no grouping", c, n)
	}
	w.Close()
	if err := w.Record(ctx, audit.Access{ClientID: "x", Interaction: "read", Status: 200}); !errors.Is(err, audit.ErrClosed) {
		t.Errorf("Record after Close = %v", err)
	}
}

func TestWriterFailsClosed(t *testing.T) {
	t.Parallel()
	boom := errors.New("disk full")
	rider := &sliceRider{rows: []store.Exchange{{Kind: "pull"}}}
	w := audit.NewWriter(failingStore{boom}, nil, audit.Options{Rider: rider})
	defer w.Close()
	if err := w.Record(context.Background(), audit.Access{ClientID: "ehr-a", Interaction: "read", Status: 200}); !errors.Is(err, boom) {
		t.Fatalf("Record = %v, want the store's error", err)
	}
	if rider.returned != 1 {
		t.Errorf("%d exchange rows given back after the failed commit, want 1", rider.returned)
	}
}

// sliceRider hands out its rows once and counts those given back.
type sliceRider struct {
	mu       sync.Mutex
	rows     []store.Exchange
	returned int
}

func (r *sliceRider) Take(max int) []store.Exchange {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := min(max, len(r.rows))
	out := r.rows[:n]
	r.rows = r.rows[n:]
	return out
}

func (r *sliceRider) Return(rows []store.Exchange) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.returned += len(rows)
}

// TestExchangeRowsRideInTheAuditCommit: the rider's rows are written in
// the AuditEvents' transaction, with no commit of their own.
func TestExchangeRowsRideInTheAuditCommit(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := openDB(t, filepath.Join(t.TempDir(), "data"))
	rider := &sliceRider{}
	for range 3 {
		rider.rows = append(rider.rows, store.Exchange{Kind: "pull", Direction: "in", PartnerID: "ehr-a", Status: "ok"})
	}
	counting := &countingStore{Store: st}
	w := audit.NewWriter(counting, nil, audit.Options{Committers: 1, Rider: rider})
	defer w.Close()
	if err := w.Record(ctx, audit.Access{ClientID: "ehr-a", Interaction: "read", Status: 200, Patients: []string{"p1"}}); err != nil {
		t.Fatal(err)
	}
	rows, err := st.Exchanges(ctx, store.ExchangeFilter{})
	if err != nil || len(rows) != 3 || counting.commits() != 1 || rider.returned != 0 {
		t.Fatalf("%d exchange rows in %d commits (%v), want 3 in 1", len(rows), counting.commits(), err)
	}
}

type countingStore struct {
	*store.Store
	mu sync.Mutex
	n  int
}

func (c *countingStore) AddAuditEventsAndExchanges(ctx context.Context, recs []store.AuditRecord, rows []store.Exchange) error {
	c.mu.Lock()
	c.n++
	c.mu.Unlock()
	return c.Store.AddAuditEventsAndExchanges(ctx, recs, rows)
}

func (c *countingStore) commits() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

type failingStore struct{ err error }

func (f failingStore) AddAuditEventsAndExchanges(context.Context, []store.AuditRecord, []store.Exchange) error {
	return f.err
}

// TestGroupWaitsForAccessesInFlight: a group commit waits (up to MaxDelay)
// for accesses that have begun and not yet recorded, so staggered accesses
// share one commit; with none in flight it commits at once.
func TestGroupWaitsForAccessesInFlight(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := openDB(t, filepath.Join(t.TempDir(), "data"))
	counting := &countingStore{Store: st}
	w := audit.NewWriter(counting, nil, audit.Options{Committers: 1, MaxDelay: 5 * time.Second})
	defer w.Close()
	const n = 4
	ends := make([]func(), n)
	for i := range n {
		ends[i] = w.Begin()
	}
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			defer ends[i]()
			time.Sleep(time.Duration(i) * 20 * time.Millisecond)
			if err := w.Record(ctx, audit.Access{ClientID: "ehr-a", Interaction: "read", Status: 200}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if c := counting.commits(); c != 1 {
		t.Errorf("%d commits for %d staggered accesses in flight, want 1", c, n)
	}
	start := time.Now()
	if err := w.Record(ctx, audit.Access{ClientID: "ehr-a", Interaction: "read", Status: 200}); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("a lone access waited %v for others", d)
	}
}
