package pharmacy_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/tidwall/gjson"

	"github.com/kapgw/kapgw/internal/fhirvalid"
	"github.com/kapgw/kapgw/internal/intake"
	"github.com/kapgw/kapgw/internal/jobs"
	"github.com/kapgw/kapgw/internal/kap"
	"github.com/kapgw/kapgw/internal/kap/kaptest"
	"github.com/kapgw/kapgw/internal/pgtest"
	"github.com/kapgw/kapgw/internal/store"
	"github.com/kapgw/kapgw/pharmacy"
	"github.com/kapgw/kapgw/pharmacy/script"
	"github.com/kapgw/kapgw/pharmacy/sign"
	"github.com/kapgw/kapgw/pharmacy/sim"
)

// accepted is when the test episodes are accepted: a day after the
// home-dosing prescription was written.
var accepted = time.Date(2026, 3, 24, 12, 0, 0, 0, time.UTC)

func openStore(t testing.TB, dialect string) *store.Store {
	t.Helper()
	ctx := context.Background()
	cfg := store.Config{DataDir: filepath.Join(t.TempDir(), "data")}
	if dialect == "postgres" {
		cfg.DatabaseURL = postgresSchema(t)
	}
	st, err := store.Open(ctx, cfg, func() time.Time { return accepted })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if err := jobs.Migrate(ctx, st); err != nil {
		t.Fatal(err)
	}
	return st
}

// postgresSchema returns a URL of the test database on a fresh schema.
func postgresSchema(t testing.TB) string {
	t.Helper()
	return pgtest.SchemaURL(t, "pharmacy_test_")
}

// gateway is the intake service sending through a River queue to ph.
func gateway(t testing.TB, st *store.Store, f sim.Faults) (*intake.Service, *sim.Sim) {
	t.Helper()
	return gatewayWith(t, st, sim.Config{Faults: f}, func(p *pharmacy.Prescriptions) *pharmacy.Prescriptions { return p })
}

// gatewayWith is gateway with the simulator's faults and refills from
// simCfg, and the prescription hook passed through wrap.
func gatewayWith(t testing.TB, st *store.Store, simCfg sim.Config, wrap func(*pharmacy.Prescriptions) *pharmacy.Prescriptions) (*intake.Service, *sim.Sim) {
	t.Helper()
	s := signer(t)
	cb := pharmacy.NewCallbacks(st, func(context.Context) ([]byte, error) { return secret, nil }, pharmacy.LogJournal{Log: discard()}, "", time.Now)
	cbSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if err := cb.Receive(r.Context(), r.Header.Get(pharmacy.TimestampHeader), r.Header.Get(pharmacy.SignatureHeader), body); err != nil {
			if r.Context().Err() == nil { // not the simulator closing at the end of the test
				t.Errorf("callback: %v", err)
			}
			w.WriteHeader(http.StatusBadRequest)
		}
	}))
	t.Cleanup(cbSrv.Close)
	ph := sim.New(sim.Config{Log: discard(), Keys: sign.KeysOf(s), Secret: secret, Faults: simCfg.Faults, Refills: simCfg.Refills,
		HTTP: http.DefaultClient, CallbackURL: cbSrv.URL, CallbackDelay: 10 * time.Millisecond})
	srv := httptest.NewServer(ph.Handler())
	client, err := pharmacy.NewClient(srv.URL, &http.Client{Timeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	workers := river.NewWorkers()
	river.AddWorker(workers, pharmacy.NewSender(client, s, pharmacy.LogJournal{Log: discard()}, st, time.Now).WithAttemptLog(st))
	river.AddWorker(workers, pharmacy.NewTaskWriter(st))
	q, err := jobs.New(st, discard(), jobs.Config{Workers: workers, FetchPollInterval: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := q.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = q.Stop(ctx)
		srv.Close()
		ph.Close()
	})
	now := func() time.Time { return accepted }
	in := intake.New(st, now, "").WithPrescriber(wrap(pharmacy.NewPrescriptions(q, pharmacy.LogJournal{Log: discard()}, now).WithLedger(st).WithRecords(st)))
	return in, ph
}

// waitFor polls until the simulator has n distinct messages.
func waitFor(t testing.TB, ph *sim.Sim, n int) []sim.Received {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if r := ph.Received(); len(r) >= n {
			return r
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("pharmacy received %+v, want %d messages", ph.Received(), n)
	return nil
}

// waitDispense polls until the MedicationDispense id is completed.
func waitDispense(t testing.TB, st *store.Store, id string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		v, err := st.Read(context.Background(), "MedicationDispense", id)
		if err == nil && gjson.GetBytes(v.Body, "status").String() == "completed" {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no completed MedicationDispense %s", id)
}

// TestEndToEnd: an active prescription reaches the pharmacy as exactly one
// signed NewRx, under a 503 and a timeout; duplicate, out-of-order
// callbacks make one completed MedicationDispense per fill; the refill the
// simulator fills straight away is early and opens the refill Task; and
// cancelling it in a later document sends CancelRx.
func TestEndToEnd(t *testing.T) {
	t.Parallel()
	for _, dialect := range []string{"sqlite", "postgres"} {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			st := openStore(t, dialect)
			in, ph := gatewayWith(t, st, sim.Config{Faults: sim.Faults{FailFirst: 1, SlowFirst: 2, Slow: time.Second, Duplicate: true, OutOfOrder: true}, Refills: 1},
				func(p *pharmacy.Prescriptions) *pharmacy.Prescriptions { return p })
			doc := kaptest.Example(kaptest.HomeDosing)
			res, err := in.Put(context.Background(), "ep-700001", doc)
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Prescriptions) != 1 || res.Prescriptions[0].MessageID == "" || len(res.Prescriptions[0].Findings) != 0 {
				t.Fatalf("prescriptions %+v", res.Prescriptions)
			}
			// The same document again, and a retry storm, queue nothing new.
			if _, err := in.Put(context.Background(), "ep-700001", doc); err != nil {
				t.Fatal(err)
			}
			got := waitFor(t, ph, 1)
			time.Sleep(500 * time.Millisecond)
			if got = ph.Received(); len(got) != 1 || got[0].Kind != "NewRx" || got[0].MessageID != res.Prescriptions[0].MessageID {
				t.Fatalf("received %+v, want one NewRx", got)
			}
			waitDispense(t, st, pharmacy.DispenseID(got[0].PrescriberOrderNumber))
			waitDispense(t, st, pharmacy.FillDispenseID(got[0].PrescriberOrderNumber, 1))
			task := waitTask(t, st, pharmacy.TaskID(got[0].PrescriberOrderNumber, pharmacy.TaskRefill), "requested")
			if code := gjson.GetBytes(task, "input.0.type.text").String(); code != "warn: "+pharmacy.CodeEarlyRefill {
				t.Errorf("refill Task input %q", code)
			}
			cancelled := bytes.Replace(doc, []byte(`"status": "active",
      "writtenAt"`), []byte(`"status": "cancelled",
      "writtenAt"`), 1)
			if _, err := in.Put(context.Background(), "ep-700001", cancelled); err != nil {
				t.Fatal(err)
			}
			got = waitFor(t, ph, 2)
			if got[1].Kind != "CancelRx" || got[1].PrescriberOrderNumber != got[0].PrescriberOrderNumber {
				t.Errorf("second message %+v, want CancelRx", got[1])
			}
		})
	}
}

func TestBlockedPrescriptionIsNotSent(t *testing.T) {
	t.Parallel()
	st := openStore(t, "sqlite")
	in, ph := gateway(t, st, sim.Faults{})
	good := kaptest.Example(kaptest.HomeDosing)
	doc := bytes.Replace(good, []byte("\"FL\",\n      \"IL\""), []byte(`"IL"`), 1)
	res, err := in.Put(context.Background(), "ep-700001", doc)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Prescriptions) != 1 || res.Prescriptions[0].MessageID != "" || res.Prescriptions[0].Findings[0].Code != "pharmacy-ships" {
		t.Fatalf("prescriptions %+v", res.Prescriptions)
	}
	ep, _ := kap.Decode(good)
	order := script.OrderNumber(ep, 0)
	task := waitTask(t, st, pharmacy.TaskID(order, pharmacy.TaskBlocked), "requested")
	if got := gjson.GetBytes(task, "input.0.type.text").String(); got != "block: pharmacy-ships" {
		t.Errorf("task input %q", got)
	}
	fhirvalid.New(t).Check(t, task)
	if r := ph.Received(); len(r) != 0 {
		t.Errorf("blocked prescription reached the pharmacy: %+v", r)
	}
	// The clinic fixes the document: the NewRx goes, the Task is resolved.
	if _, err := in.Put(context.Background(), "ep-700001", good); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ph, 1)
	waitTask(t, st, pharmacy.TaskID(order, pharmacy.TaskBlocked), "completed")
}

func TestPharmacyErrorBecomesTask(t *testing.T) {
	t.Parallel()
	st := openStore(t, "sqlite")
	in, ph := gateway(t, st, sim.Faults{ErrorAll: true})
	doc := kaptest.Example(kaptest.HomeDosing)
	if _, err := in.Put(context.Background(), "ep-700001", doc); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ph, 1)
	ep, _ := kap.Decode(doc)
	task := waitTask(t, st, pharmacy.TaskID(script.OrderNumber(ep, 0), pharmacy.TaskFailed), "requested")
	if got := gjson.GetBytes(task, "description").String(); got != "The pharmacy refused the prescription (SCRIPT Error 900)" {
		t.Errorf("description %q", got)
	}
	fhirvalid.New(t).Check(t, task)
}

// waitTask polls until the Task has the status and returns its body.
func waitTask(t testing.TB, st *store.Store, id, status string) []byte {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		v, err := st.Read(context.Background(), "Task", id)
		if err == nil && gjson.GetBytes(v.Body, "status").String() == status {
			return v.Body
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no %s Task %s", status, id)
	return nil
}
