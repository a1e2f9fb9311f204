package pharmacy_test

import (
	"bytes"
	"context"
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/kapgw/kapgw/internal/fhirvalid"
	"github.com/kapgw/kapgw/internal/kap"
	"github.com/kapgw/kapgw/internal/kap/kaptest"
	"github.com/kapgw/kapgw/internal/store"
	"github.com/kapgw/kapgw/pharmacy"
	"github.com/kapgw/kapgw/pharmacy/script"
	"github.com/kapgw/kapgw/pharmacy/sim"
)

// waitStep polls until the order's timeline has the step and returns it.
func waitStep(t testing.TB, st *store.Store, id, step string) []store.RxStep {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		steps, err := st.RxTimeline(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if slices.ContainsFunc(steps, func(s store.RxStep) bool { return s.Step == step }) {
			return steps
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("timeline of %s has no %s step", id, step)
	return nil
}

// TestChangedPrescriptionIsReissued: a sent prescription whose content
// changes is cancelled (CancelRx of issue 1) and re-issued (NewRx issue
// 2); the archive holds every message with its signature and attempts, and
// the timeline runs from written to delivered.
func TestChangedPrescriptionIsReissued(t *testing.T) {
	t.Parallel()
	for _, dialect := range []string{"sqlite", "postgres"} {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			st := openStore(t, dialect)
			in, ph := gateway(t, st, sim.Faults{})
			doc := kaptest.Example(kaptest.HomeDosing)
			if _, err := in.Put(context.Background(), "ep-700001", doc); err != nil {
				t.Fatal(err)
			}
			first := waitFor(t, ph, 1)[0]
			order := first.PrescriberOrderNumber
			waitStep(t, st, order, pharmacy.StepDelivered)
			// The simulator may call back before the sender has recorded
			// the pharmacy's Status answer: wait for that step too.
			steps := waitStep(t, st, order, pharmacy.StepAccepted)
			var names []string
			for _, s := range steps {
				names = append(names, s.Step)
			}
			for _, want := range []string{"written", "checked", "queued", "signed", "sent", "accepted", "dispensed", "shipped", "delivered"} {
				if !slices.Contains(names, want) {
					t.Errorf("timeline %v has no %s", names, want)
				}
			}
			changed := bytes.Replace(doc, []byte(`"quantity": 12,`), []byte(`"quantity": 10,`), 1)
			res, err := in.Put(context.Background(), "ep-700001", changed)
			if err != nil {
				t.Fatal(err)
			}
			ep, _ := kap.Decode(changed)
			rxID := ep.Prescriptions[0].ID
			if got, want := res.Prescriptions[0].MessageID, script.MessageID("NewRx", rxID, 2); got != want {
				t.Errorf("re-issued as %s, want issue 2 %s", got, want)
			}
			got := waitFor(t, ph, 3)
			kinds := []string{got[0].Kind, got[1].Kind, got[2].Kind}
			if !slices.Contains(kinds, "CancelRx") || got[1].MessageID == first.MessageID {
				t.Fatalf("received %+v, want NewRx, CancelRx of issue 1, NewRx issue 2", got)
			}
			msgs, err := st.RxMessages(context.Background(), order)
			if err != nil || len(msgs) != 3 {
				t.Fatalf("archive %d messages, %v; want 3", len(msgs), err)
			}
			deadline := time.Now().Add(30 * time.Second)
			for _, m := range msgs {
				for m.Status != "accepted" && time.Now().Before(deadline) {
					time.Sleep(20 * time.Millisecond)
					all, _ := st.RxMessages(context.Background(), order)
					m = all[slices.IndexFunc(all, func(x store.RxMessage) bool { return x.MessageID == m.MessageID })]
				}
				if m.Status != "accepted" || m.JWS == "" || m.Attempts < 1 || len(m.Body) == 0 {
					t.Errorf("archived %s %s issue %d: status %s, %d attempts, jws %t", m.Kind, m.MessageID, m.Issue, m.Status, m.Attempts, m.JWS != "")
				}
			}
			waitStep(t, st, rxID, pharmacy.StepReissued)
		})
	}
}

// TestCallbacksBecomeFHIR: Error and RxChangeRequest open Tasks for the
// prescriber, a denied CancelRxResponse opens one, an approved one marks
// the MedicationRequest cancelled; a repeated event id changes nothing.
// Every resource written is valid FHIR.
func TestCallbacksBecomeFHIR(t *testing.T) {
	t.Parallel()
	st := openStore(t, "sqlite")
	in, _ := gateway(t, st, sim.Faults{})
	doc := kaptest.Example(kaptest.HomeDosing)
	if _, err := in.Put(context.Background(), "ep-700001", doc); err != nil {
		t.Fatal(err)
	}
	ep, _ := kap.Decode(doc)
	order := script.OrderNumber(ep, 0)
	cb := pharmacy.NewCallbacks(st, func(context.Context) ([]byte, error) { return secret, nil }, pharmacy.LogJournal{Log: discard()}, "", time.Now)
	send := func(e pharmacy.Event) {
		t.Helper()
		e.PrescriberOrderNumber, e.OccurredAt = order, time.Now().UTC()
		body, _ := json.Marshal(e)
		ts, sig := pharmacy.SignCallback(secret, time.Now(), body)
		if err := cb.Receive(context.Background(), ts, sig, body); err != nil {
			t.Fatalf("%s: %v", e.Type, err)
		}
	}
	v := fhirvalid.New(t)
	send(pharmacy.Event{EventID: "ev-err", Type: pharmacy.EventError, Code: "601", Description: "DEA number not on file"})
	send(pharmacy.Event{EventID: "ev-chg", Type: pharmacy.EventRxChangeRequest, Code: "T", Description: "Therapeutic interchange to lozenge 150 mg"})
	send(pharmacy.Event{EventID: "ev-deny", Type: pharmacy.EventCancelRxResponse, Code: "AM"})
	var bodies [][]byte
	for kind, want := range map[string]string{
		pharmacy.TaskFailed:       "SCRIPT Error 601",
		pharmacy.TaskChange:       "RxChangeRequest T",
		pharmacy.TaskCancelDenied: "CancelRxResponse denied AM",
	} {
		r, err := st.Read(context.Background(), "Task", pharmacy.TaskID(order, kind))
		if err != nil {
			t.Fatalf("task %s: %v", kind, err)
		}
		if d := gjson.GetBytes(r.Body, "description").String(); !bytes.Contains([]byte(d), []byte(want)) || gjson.GetBytes(r.Body, "status").String() != "requested" {
			t.Errorf("task %s: %s", kind, r.Body)
		}
		bodies = append(bodies, r.Body)
	}
	chg, _ := st.Read(context.Background(), "Task", pharmacy.TaskID(order, pharmacy.TaskChange))
	if got := gjson.GetBytes(chg.Body, "input.0.valueString").String(); got != "Therapeutic interchange to lozenge 150 mg" {
		t.Errorf("change request text %q", got)
	}
	send(pharmacy.Event{EventID: "ev-ok", Type: pharmacy.EventCancelRxResponse, Approved: true})
	mr, err := st.Read(context.Background(), "MedicationRequest", order)
	if err != nil || gjson.GetBytes(mr.Body, "status").String() != "cancelled" {
		t.Fatalf("order after approved cancel: %s, %v", mr.Body, err)
	}
	bodies = append(bodies, mr.Body)
	v.Check(t, bodies...)
	// The same event again writes nothing.
	send(pharmacy.Event{EventID: "ev-chg", Type: pharmacy.EventRxChangeRequest, Code: "X", Description: "other"})
	again, _ := st.Read(context.Background(), "Task", pharmacy.TaskID(order, pharmacy.TaskChange))
	if again.VersionID != chg.VersionID {
		t.Errorf("repeated event id wrote version %d", again.VersionID)
	}
	steps := waitStep(t, st, order, pharmacy.StepCancelled)
	for _, want := range []string{pharmacy.StepPharmacyError, pharmacy.StepChangeRequest, pharmacy.StepCancelDenied} {
		if !slices.ContainsFunc(steps, func(s store.RxStep) bool { return s.Step == want }) {
			t.Errorf("timeline has no %s", want)
		}
	}
}
