package main

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/kapgw/kapgw/internal/fhirvalid"
	"github.com/kapgw/kapgw/internal/kap/kaptest"
	"github.com/kapgw/kapgw/internal/store"
	"github.com/kapgw/kapgw/mappers"
	"github.com/kapgw/kapgw/pharmacy"
	"github.com/kapgw/kapgw/pharmacy/rules"
	"github.com/kapgw/kapgw/pharmacy/sim"
)

// storePartnerMedication stores, as the sync pull does, a MedicationStatement
// a partner EHR holds for our patient, in the database of dataDir.
func storePartnerMedication(t *testing.T, dataDir, patientID, body string) {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, store.Config{DataDir: dataDir}, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	id := mappers.ID("MedicationStatement", "ehr-a", "ms-1")
	page := store.PullPage{PartnerID: "ehr-a", PatientID: patientID, Type: "MedicationStatement",
		Resources: []store.Pulled{{RemoteID: "ms-1", Resource: store.Resource{Type: "MedicationStatement", ID: id, PatientID: patientID,
			Body: []byte(`{"resourceType":"MedicationStatement","id":"` + id + `",` + body + `,"subject":{"reference":"Patient/` + patientID + `"}}`)}}}}
	if _, err := st.StorePulled(ctx, page); err != nil {
		t.Fatal(err)
	}
}

// TestPartnerMedicationWarnsThroughGateway: a partner EHR's record that the
// patient takes phenelzine (an MAOI), pulled before the episode arrives,
// puts an interaction warning on the active prescription, in the PUT's
// OperationOutcome and as a warning Task GET /fhir/r4/Task?patient=
// finds, and the NewRx is still sent; a stopped phenelzine does not warn.
func TestPartnerMedicationWarnsThroughGateway(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		status string
		warns  bool
	}{
		{"active", true},
		{"stopped", false},
	} {
		t.Run(tc.status, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			doc := recent(kaptest.Example(kaptest.HomeDosing), time.Now())
			patient := mappers.ID("Patient", gjson.GetBytes(doc, "patient.id").String())
			storePartnerMedication(t, dir, patient, `"status":"`+tc.status+`","medicationCodeableConcept":{"coding":[{"system":"http://www.nlm.nih.gov/research/umls/rxnorm","code":"8123","display":"phenelzine"}]}`)

			pharmacyURL, _, makeSim := startPharmacyWith(t, dir, sim.Config{})
			g := startGateway(t, "--data-dir", dir, "--pharmacy-url", pharmacyURL)
			ph := makeSim(g.base + "/pharmacy/v1/callbacks")
			g.token = g.login(t, "clinic-platform", "clinic", clinicScopes, nil)
			partner := g.as(g.login(t, "ehr-a", "partner", []string{"system/*.rs"}, []string{"org-thr-12"}))

			resp, body := g.do(t, http.MethodPut, "/kap/v1/episodes/"+gjson.GetBytes(doc, "id").String(), "application/json", doc)
			if resp.StatusCode != http.StatusCreated {
				t.Fatalf("PUT: %d %s", resp.StatusCode, body)
			}
			outcome := gjson.GetBytes(body, "prescriptions")
			warned := outcome.Get(`issue.#(severity=="warning")`)
			if outcome.Get(`issue.#(severity=="error")`).Exists() || warned.Exists() != tc.warns {
				t.Fatalf("prescriptions outcome %s, want a warning: %v", outcome.Raw, tc.warns)
			}
			if tc.warns && !strings.Contains(warned.Raw, rules.CodeInteractionPrefix+"maoi") {
				t.Errorf("warning %s does not name interaction-maoi", warned.Raw)
			}
			order := waitReceived(t, ph, 1)[0].PrescriberOrderNumber

			taskRef := "Task/" + pharmacy.TaskID(order, pharmacy.TaskBlocked)
			var task gjson.Result
			deadline := time.Now().Add(30 * time.Second)
			if !tc.warns {
				deadline = time.Now().Add(2 * time.Second) // the Task job would have run by then
			}
			for ; time.Now().Before(deadline) && !task.Exists(); time.Sleep(50 * time.Millisecond) {
				_, b := partner.do(t, http.MethodGet, "/fhir/r4/Task?patient=Patient/"+patient, "", nil)
				task = gjson.GetBytes(b, `entry.#(fullUrl%"*`+taskRef+`").resource`)
			}
			if task.Exists() != tc.warns {
				t.Fatalf("warning Task in Task?patient=: %s, want one: %v", task.Raw, tc.warns)
			}
			if !tc.warns {
				return
			}
			if task.Get("status").String() != "requested" || task.Get("businessStatus.text").String() != "warning" ||
				task.Get("input.0.type.text").String() != "warn: "+rules.CodeInteractionPrefix+"maoi" {
				t.Errorf("warning Task %s", task.Raw)
			}
			fhirvalid.New(t).Check(t, []byte(task.Raw))
			if got := ph.Received(); len(got) != 1 || got[0].Kind != "NewRx" {
				t.Errorf("pharmacy received %+v, want the NewRx", got)
			}
		})
	}
}
