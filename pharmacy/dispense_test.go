package pharmacy_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/tidwall/gjson"

	"github.com/kapgw/kapgw/internal/fhirvalid"
	"github.com/kapgw/kapgw/internal/intake"
	"github.com/kapgw/kapgw/internal/kap"
	"github.com/kapgw/kapgw/internal/kap/kaptest"
	"github.com/kapgw/kapgw/internal/store"
	"github.com/kapgw/kapgw/pharmacy"
	"github.com/kapgw/kapgw/pharmacy/script"
)

func callbacks(t testing.TB, st *store.Store, now time.Time) *pharmacy.Callbacks {
	t.Helper()
	return pharmacy.NewCallbacks(st, func(context.Context) ([]byte, error) { return secret, nil },
		pharmacy.LogJournal{Log: discard()}, "", func() time.Time { return now })
}

// orderOf accepts the home-dosing episode and returns its order number.
func orderOf(t testing.TB, st *store.Store) string {
	t.Helper()
	if _, err := intake.New(st, func() time.Time { return accepted }, "").Put(context.Background(), "ep-700001", kaptest.Example(kaptest.HomeDosing)); err != nil {
		t.Fatal(err)
	}
	ep, _ := kap.Decode(kaptest.Example(kaptest.HomeDosing))
	return script.OrderNumber(ep, 0)
}

func deliver(t testing.TB, cb *pharmacy.Callbacks, now time.Time, e pharmacy.Event) error {
	t.Helper()
	body, _ := json.Marshal(e)
	ts, sig := pharmacy.SignCallback(secret, now, body)
	return cb.Receive(context.Background(), ts, sig, body)
}

// TestFillBecomesMedicationDispense applies the fill events out of order
// and twice: the dispense ends completed, with its tracking identifier,
// and valid FHIR.
func TestFillBecomesMedicationDispense(t *testing.T) {
	t.Parallel()
	st := openStore(t, "sqlite")
	order := orderOf(t, st)
	now := time.Date(2026, 3, 26, 12, 0, 0, 0, time.UTC)
	cb := callbacks(t, st, now)
	ev := func(id, status string, at time.Time) pharmacy.Event {
		e := pharmacy.Event{EventID: id, Type: pharmacy.EventRxFill, FillStatus: status, PrescriberOrderNumber: order, Quantity: 12, OccurredAt: at}
		if status != pharmacy.FillDispensed {
			e.Carrier, e.TrackingNumber = "UPS", "1Z999AA10123456784"
		}
		return e
	}
	events := []pharmacy.Event{
		ev("e3", pharmacy.FillDelivered, now),
		ev("e1", pharmacy.FillDispensed, now.Add(-48*time.Hour)),
		ev("e2", pharmacy.FillShipped, now.Add(-24*time.Hour)),
		ev("e3", pharmacy.FillDelivered, now),
		ev("e2", pharmacy.FillShipped, now.Add(-24*time.Hour)),
	}
	for _, e := range events {
		if err := deliver(t, cb, now, e); err != nil {
			t.Fatalf("event %s: %v", e.EventID, err)
		}
	}
	v, err := st.Read(context.Background(), "MedicationDispense", pharmacy.DispenseID(order))
	if err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]string{
		"status":                              "completed",
		"identifier.0.value":                  "1Z999AA10123456784",
		"authorizingPrescription.0.reference": "MedicationRequest/" + order,
		"whenHandedOver":                      "2026-03-26T12:00:00Z",
		"quantity.value":                      "12",
	} {
		if got := gjson.GetBytes(v.Body, path).String(); got != want {
			t.Errorf("%s = %q, want %q", path, got, want)
		}
	}
	if v.VersionID != 1 {
		t.Errorf("versionId %d: repeated and late events must not add versions after the first write", v.VersionID)
	}
	fhirvalid.New(t).Check(t, v.Body)
}

func TestCallbackRefusals(t *testing.T) {
	t.Parallel()
	st := openStore(t, "sqlite")
	order := orderOf(t, st)
	now := time.Date(2026, 3, 26, 12, 0, 0, 0, time.UTC)
	cb := callbacks(t, st, now)
	good := pharmacy.Event{EventID: "e1", Type: pharmacy.EventRxFill, FillStatus: pharmacy.FillDispensed, PrescriberOrderNumber: order, OccurredAt: now}
	if err := deliver(t, cb, now.Add(-6*time.Minute), good); !errors.Is(err, pharmacy.ErrCallbackAuth) {
		t.Errorf("stale timestamp: %v", err)
	}
	unknown := good
	unknown.PrescriberOrderNumber = "mr-unknown"
	if err := deliver(t, cb, now, unknown); !errors.Is(err, pharmacy.ErrCallbackInvalid) {
		t.Errorf("unknown order: %v", err)
	}
	bad := good
	bad.FillStatus = "lost"
	if err := deliver(t, cb, now, bad); !errors.Is(err, pharmacy.ErrCallbackInvalid) {
		t.Errorf("bad fill status: %v", err)
	}
	body, _ := json.Marshal(good)
	ts, sig := pharmacy.SignCallback([]byte("wrong"), now, body)
	if err := cb.Receive(context.Background(), ts, sig, body); !errors.Is(err, pharmacy.ErrCallbackAuth) {
		t.Errorf("wrong secret: %v", err)
	}
}

// TestTrocheAccounting: more units administered than dispensed opens a
// warning Task; a count within the dispense resolves it.
func TestTrocheAccounting(t *testing.T) {
	t.Parallel()
	st := openStore(t, "sqlite")
	order := orderOf(t, st)
	now := time.Date(2026, 3, 26, 12, 0, 0, 0, time.UTC)
	w := pharmacy.NewTaskWriter(st)
	work := func(n int) {
		t.Helper()
		job := &river.Job[pharmacy.TaskArgs]{Args: pharmacy.TaskArgs{Order: order, TaskKind: pharmacy.TaskAccounting, Administered: n, At: now}}
		if err := w.Work(context.Background(), job); err != nil {
			t.Fatal(err)
		}
	}
	id := pharmacy.TaskID(order, pharmacy.TaskAccounting)
	work(20) // nothing dispensed yet: nothing to compare
	if _, err := st.Read(context.Background(), "Task", id); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("task before any dispense: %v", err)
	}
	e := pharmacy.Event{EventID: "e1", Type: pharmacy.EventRxFill, FillStatus: pharmacy.FillDispensed, PrescriberOrderNumber: order, Quantity: 12, OccurredAt: now}
	if err := deliver(t, callbacks(t, st, now), now, e); err != nil {
		t.Fatal(err)
	}
	work(13)
	v, err := st.Read(context.Background(), "Task", id)
	if err != nil || gjson.GetBytes(v.Body, "status").String() != "requested" ||
		gjson.GetBytes(v.Body, "input.0.valueString").String() != "13 units administered, 12 dispensed in 1 fill(s)" {
		t.Fatalf("task %s, %v", v.Body, err)
	}
	fhirvalid.New(t).Check(t, v.Body)
	work(4)
	if v, err = st.Read(context.Background(), "Task", id); err != nil || gjson.GetBytes(v.Body, "status").String() != "completed" {
		t.Errorf("task after a count within the dispense: %s, %v", v.Body, err)
	}
	// Refills count: 13 taken of 24 dispensed in two fills is fine, 25 is not.
	refill := pharmacy.Event{EventID: "e2", Type: pharmacy.EventRxFill, FillStatus: pharmacy.FillDispensed, PrescriberOrderNumber: order,
		Quantity: 12, Refill: 1, OccurredAt: now.Add(30 * 24 * time.Hour)}
	if err := deliver(t, callbacks(t, st, now), now, refill); err != nil {
		t.Fatal(err)
	}
	work(13)
	if v, err = st.Read(context.Background(), "Task", id); err != nil || gjson.GetBytes(v.Body, "status").String() != "completed" {
		t.Errorf("task after 13 of two fills: %s, %v", v.Body, err)
	}
	work(25)
	if v, err = st.Read(context.Background(), "Task", id); err != nil || gjson.GetBytes(v.Body, "status").String() != "requested" ||
		gjson.GetBytes(v.Body, "input.0.valueString").String() != "25 units administered, 24 dispensed in 2 fill(s)" {
		t.Errorf("task after 25 of two fills: %s, %v", v.Body, err)
	}
}
