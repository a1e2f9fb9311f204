package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/kapgw/kapgw/internal/fhirvalid"
	"github.com/kapgw/kapgw/internal/kap/kaptest"
	"github.com/kapgw/kapgw/mappers"
	"github.com/kapgw/kapgw/pharmacy"
	"github.com/kapgw/kapgw/pharmacy/sim"
)

// TestPrescriptionThroughGatewayUnderFaults runs kapgw serve (SQLite and
// PostgreSQL) against a pharmacy that answers 503 first, then too slowly
// for the 1s delivery timeout, and sends every callback twice and each
// fill's callbacks last first, then fills a refill straight away. The
// pharmacy still holds exactly one NewRx, delivered twice under one
// MessageID; the callbacks make one completed MedicationDispense per fill
// that a partner reads; the early refill opens a warning Task found by
// GET /fhir/r4/Task?patient=; and callbacks with a bad signature or a
// stale timestamp are refused and change nothing.
func TestPrescriptionThroughGatewayUnderFaults(t *testing.T) {
	t.Parallel()
	for _, dialect := range []string{"sqlite", "postgres"} {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			flags := []string{"--data-dir", dir}
			if dialect == "postgres" {
				flags = append(flags, "--database-url", postgresURL(t))
			}
			faults := sim.Faults{FailFirst: 1, SlowFirst: 2, Slow: 3 * time.Second, Duplicate: true, OutOfOrder: true}
			pharmacyURL, secret, makeSim := startPharmacyWith(t, dir, sim.Config{Faults: faults, Refills: 1})
			g := startGateway(t, append(flags, "--pharmacy-url", pharmacyURL, "--pharmacy-timeout", "1s")...)
			ph := makeSim(g.base + "/pharmacy/v1/callbacks")
			g.token = g.login(t, "clinic-platform", "clinic", clinicScopes, nil)
			partner := g.as(g.login(t, "ehr-a", "partner", []string{"system/*.rs"}, []string{"org-thr-12"}))

			doc := recent(kaptest.Example(kaptest.HomeDosing), time.Now())
			id := gjson.GetBytes(doc, "id").String()
			resp, body := g.do(t, http.MethodPut, "/kap/v1/episodes/"+id, "application/json", doc)
			if resp.StatusCode != http.StatusCreated || gjson.GetBytes(body, `prescriptions.issue.#(severity=="error")`).Exists() {
				t.Fatalf("PUT: %d %s", resp.StatusCode, gjson.GetBytes(body, "prescriptions"))
			}
			// The same document again queues nothing new.
			if resp, body := g.do(t, http.MethodPut, "/kap/v1/episodes/"+id, "application/json", doc); resp.StatusCode != http.StatusOK {
				t.Fatalf("PUT again: %d %s", resp.StatusCode, body)
			}
			order := waitReceived(t, ph, 1)[0].PrescriberOrderNumber

			tracking := map[string]bool{}
			for refill, fillType := range []string{"FF", "RF"} {
				md := waitCompleted(t, partner, pharmacy.FillDispenseID(order, refill))
				fhirvalid.New(t).Check(t, md)
				for path, want := range map[string]string{
					"authorizingPrescription.0.reference": "MedicationRequest/" + order,
					"quantity.value":                      "12",
					"type.coding.0.code":                  fillType,
					"destination.display":                 "Patient's home (shipped by the pharmacy)",
				} {
					if got := gjson.GetBytes(md, path).String(); got != want {
						t.Errorf("dispense of fill %d: %s = %q, want %q", refill, path, got, want)
					}
				}
				if !gjson.GetBytes(md, "whenHandedOver").Exists() {
					t.Errorf("dispense of fill %d has no whenHandedOver", refill)
				}
				tracking[gjson.GetBytes(md, "identifier.0.value").String()] = true
			}
			if len(tracking) != 2 || tracking[""] {
				t.Errorf("tracking numbers %v, want one per fill", tracking)
			}
			resp, bundle := partner.do(t, http.MethodGet, "/fhir/r4/MedicationDispense?prescription=MedicationRequest/"+order, "", nil)
			if resp.StatusCode != http.StatusOK || gjson.GetBytes(bundle, "entry.#").Int() != 2 {
				t.Errorf("dispenses of the order: %d, %d entries, want 2", resp.StatusCode, gjson.GetBytes(bundle, "entry.#").Int())
			}

			patient := mappers.ID("Patient", gjson.GetBytes(doc, "patient.id").String())
			refillTask := "Task/" + pharmacy.TaskID(order, pharmacy.TaskRefill)
			var task gjson.Result
			for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline) && !task.Exists(); time.Sleep(50 * time.Millisecond) {
				_, b := partner.do(t, http.MethodGet, "/fhir/r4/Task?patient=Patient/"+patient, "", nil)
				task = gjson.GetBytes(b, `entry.#(fullUrl%"*`+refillTask+`").resource`)
			}
			if !task.Exists() || task.Get("businessStatus.text").String() != "warning" || task.Get("input.0.type.text").String() != "warn: "+pharmacy.CodeEarlyRefill {
				t.Errorf("Task?patient= has no early-refill warning Task: %s", task.Raw)
			}

			// Forged or replayed callbacks are refused and change nothing.
			forged := pharmacy.Event{EventID: "forged-1", Type: pharmacy.EventRxFill, FillStatus: pharmacy.FillDelivered,
				PrescriberOrderNumber: order, Quantity: 99, Refill: 2, OccurredAt: time.Now()}
			ev, _ := json.Marshal(forged)
			for name, signWith := range map[string]struct {
				secret []byte
				at     time.Time
			}{
				"bad signature":   {[]byte("not the secret"), time.Now()},
				"stale timestamp": {secret, time.Now().Add(-pharmacy.CallbackWindow - time.Minute)},
			} {
				ts, sig := pharmacy.SignCallback(signWith.secret, signWith.at, ev)
				if status := postCallback(t, g.base, ts, sig, ev); status != http.StatusUnauthorized {
					t.Errorf("%s: callback answered %d, want 401", name, status)
				}
			}
			if resp, _ := partner.do(t, http.MethodGet, "/fhir/r4/MedicationDispense/"+pharmacy.FillDispenseID(order, 2), "", nil); resp.StatusCode != http.StatusNotFound {
				t.Errorf("a refused callback wrote a dispense: %d", resp.StatusCode)
			}

			// The timed-out attempt is retried (River's backoff: about 16s)
			// with the same MessageID, and then accepted.
			for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
				if got := ph.Received(); len(got) > 0 && got[0].Attempts >= 2 {
					break
				}
			}
			var track string
			for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
				if track = runOut(t, append([]string{"rx", "track"}, append(flags, order)...)...); strings.Contains(track, " accepted ") {
					break
				}
			}
			if !strings.Contains(track, " unknown ") || !strings.Contains(track, " accepted ") {
				t.Errorf("rx track shows no unknown attempt followed by acceptance:\n%s", track)
			}
			if got := ph.Received(); len(got) != 1 || got[0].Kind != "NewRx" || got[0].Attempts != 2 {
				t.Errorf("pharmacy received %+v, want one NewRx delivered twice under one MessageID", got)
			}
			for _, c := range ph.Callbacks() {
				if c.Status != http.StatusNoContent {
					t.Errorf("callback %s answered %d, want 204 (duplicates included)", c.EventID, c.Status)
				}
			}
			if n := len(ph.Callbacks()); n != 12 {
				t.Errorf("%d callbacks posted, want 12 (two fills, three events each, twice)", n)
			}
		})
	}
}

// waitCompleted polls as g until the MedicationDispense id is completed
// and returns it.
func waitCompleted(t *testing.T, g *gateway, id string) []byte {
	t.Helper()
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		resp, b := g.do(t, http.MethodGet, "/fhir/r4/MedicationDispense/"+id, "", nil)
		if resp.StatusCode == http.StatusOK && gjson.GetBytes(b, "status").String() == "completed" {
			return b
		}
	}
	t.Fatalf("partner never read a completed MedicationDispense %s", id)
	return nil
}

// postCallback posts one pharmacy callback to the gateway and returns the
// status.
func postCallback(t *testing.T, base, timestamp, signature string, body []byte) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, base+"/pharmacy/v1/callbacks", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(pharmacy.TimestampHeader, timestamp)
	req.Header.Set(pharmacy.SignatureHeader, signature)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	return resp.StatusCode
}

// TestPharmacyRefusalsThroughGateway: a pharmacy answering SCRIPT Error
// gets the NewRx once (an Error is final, never retried) and the
// prescriber a failed Task; a pharmacy signing its callbacks with a wrong
// HMAC has every callback refused with 401, and no MedicationDispense is
// written.
func TestPharmacyRefusalsThroughGateway(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		faults sim.Faults
	}{
		{"error", sim.Faults{ErrorAll: true}},
		{"bad signature", sim.Faults{BadSignature: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			pharmacyURL, _, makeSim := startPharmacyWith(t, dir, sim.Config{Faults: tc.faults})
			g := startGateway(t, "--data-dir", dir, "--pharmacy-url", pharmacyURL, "--pharmacy-timeout", "1s")
			ph := makeSim(g.base + "/pharmacy/v1/callbacks")
			g.token = g.login(t, "clinic-platform", "clinic", clinicScopes, nil)
			partner := g.as(g.login(t, "ehr-a", "partner", []string{"system/*.rs"}, []string{"org-thr-12"}))
			doc := recent(kaptest.Example(kaptest.HomeDosing), time.Now())
			if resp, body := g.do(t, http.MethodPut, "/kap/v1/episodes/"+gjson.GetBytes(doc, "id").String(), "application/json", doc); resp.StatusCode != http.StatusCreated {
				t.Fatalf("PUT: %d %s", resp.StatusCode, body)
			}
			order := waitReceived(t, ph, 1)[0].PrescriberOrderNumber
			patient := mappers.ID("Patient", gjson.GetBytes(doc, "patient.id").String())

			if tc.faults.ErrorAll {
				failed := "Task/" + pharmacy.TaskID(order, pharmacy.TaskFailed)
				var task gjson.Result
				for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline) && !task.Exists(); time.Sleep(50 * time.Millisecond) {
					_, b := partner.do(t, http.MethodGet, "/fhir/r4/Task?patient=Patient/"+patient, "", nil)
					task = gjson.GetBytes(b, `entry.#(fullUrl%"*`+failed+`").resource`)
				}
				if task.Get("description").String() != "The pharmacy refused the prescription (SCRIPT Error 900)" {
					t.Errorf("no failed Task through Task?patient=: %s", task.Raw)
				}
				time.Sleep(2 * time.Second) // a retry would come after about 1s
				if got := ph.Received(); len(got) != 1 || got[0].Attempts != 1 {
					t.Errorf("pharmacy received %+v, want one NewRx sent once", got)
				}
				return
			}
			var cbs []sim.Callback
			for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline) && len(cbs) < 3; time.Sleep(50 * time.Millisecond) {
				cbs = ph.Callbacks()
			}
			if len(cbs) != 3 {
				t.Fatalf("callbacks %+v, want 3", cbs)
			}
			for _, c := range cbs {
				if c.Status != http.StatusUnauthorized {
					t.Errorf("callback %s with a bad signature answered %d, want 401", c.EventID, c.Status)
				}
			}
			if resp, _ := partner.do(t, http.MethodGet, "/fhir/r4/MedicationDispense/"+pharmacy.DispenseID(order), "", nil); resp.StatusCode != http.StatusNotFound {
				t.Errorf("refused callbacks wrote a dispense: %d", resp.StatusCode)
			}
		})
	}
}
