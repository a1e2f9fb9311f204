package pharmacy_test

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/kapgw/kapgw/internal/fhirvalid"
	"github.com/kapgw/kapgw/internal/kap"
	"github.com/kapgw/kapgw/internal/kap/kaptest"
	"github.com/kapgw/kapgw/internal/store"
	"github.com/kapgw/kapgw/mappers"
	"github.com/kapgw/kapgw/pharmacy"
	"github.com/kapgw/kapgw/pharmacy/rules"
	"github.com/kapgw/kapgw/pharmacy/script"
	"github.com/kapgw/kapgw/pharmacy/sim"
)

// otherEpisode is the home-dosing document as a second episode of the same
// patient (every id but the patient's renamed).
func otherEpisode() []byte {
	return bytes.ReplaceAll(kaptest.Example(kaptest.HomeDosing), []byte("ep-700001"), []byte("ep-700002"))
}

// cancelledDoc is doc with its first prescription cancelled.
func cancelledDoc(doc []byte) []byte {
	return bytes.Replace(doc, []byte("\"status\": \"active\",\n      \"writtenAt\""), []byte("\"status\": \"cancelled\",\n      \"writtenAt\""), 1)
}

func codes(c pharmacy.Checked) []string {
	var out []string
	for _, f := range c.Findings {
		out = append(out, f.Code)
	}
	return out
}

// TestSecondActivePrescriptionAcrossEpisodes: while one episode of a
// patient holds an active ketamine prescription, another episode's active
// prescription is blocked as duplicate-active; once the first is
// cancelled, the second goes; another patient is never affected.
func TestSecondActivePrescriptionAcrossEpisodes(t *testing.T) {
	t.Parallel()
	for _, dialect := range []string{"sqlite", "postgres"} {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			st := openStore(t, dialect)
			in, ph := gateway(t, st, sim.Faults{})
			ctx := context.Background()
			first := kaptest.Example(kaptest.HomeDosing)
			res, err := in.Put(ctx, "ep-700001", first)
			if err != nil {
				t.Fatal(err)
			}
			if c := res.Prescriptions[0]; c.MessageID == "" || len(c.Findings) != 0 {
				t.Fatalf("first episode: %+v", c)
			}

			second := otherEpisode()
			res, err = in.Put(ctx, "ep-700002", second)
			if err != nil {
				t.Fatal(err)
			}
			if c := res.Prescriptions[0]; c.MessageID != "" || !slices.Equal(codes(c), []string{rules.CodeDuplicateActive}) {
				t.Fatalf("second episode while the first is active: %+v", c)
			}

			// A third episode of another patient is not blocked.
			third := bytes.ReplaceAll(bytes.ReplaceAll(kaptest.Example(kaptest.HomeDosing), []byte("ep-700001"), []byte("ep-700003")),
				[]byte(`"pt-700001"`), []byte(`"pt-700003"`))
			if res, err = in.Put(ctx, "ep-700003", third); err != nil {
				t.Fatal(err)
			}
			if c := res.Prescriptions[0]; c.MessageID == "" || len(c.Findings) != 0 {
				t.Fatalf("another patient's episode: %+v", c)
			}

			// The first is cancelled: the second episode's next document goes.
			if _, err := in.Put(ctx, "ep-700001", cancelledDoc(first)); err != nil {
				t.Fatal(err)
			}
			res, err = in.Put(ctx, "ep-700002", bytes.Replace(second, []byte(`"title": "Ketamine-assisted psychotherapy"`), []byte(`"title": "KAP, second course"`), 1))
			if err != nil {
				t.Fatal(err)
			}
			if c := res.Prescriptions[0]; c.MessageID == "" || len(c.Findings) != 0 {
				t.Fatalf("second episode after the first was cancelled: %+v", c)
			}
			got := waitFor(t, ph, 4) // NewRx 1, NewRx 3, CancelRx 1, NewRx 2
			var kinds []string
			for _, r := range got {
				kinds = append(kinds, r.Kind)
			}
			if slices.Sort(kinds); !slices.Equal(kinds, []string{"CancelRx", "NewRx", "NewRx", "NewRx"}) {
				t.Errorf("pharmacy received %+v", got)
			}
		})
	}
}

// TestMedications converts partner records into what the interaction
// rules read.
func TestMedications(t *testing.T) {
	t.Parallel()
	res := func(typ, body string) store.Resource { return store.Resource{Type: typ, ID: "x", Body: []byte(body)} }
	in := []store.Resource{
		res("MedicationStatement", `{"resourceType":"MedicationStatement","status":"active","medicationCodeableConcept":{"coding":[{"system":"http://www.nlm.nih.gov/research/umls/rxnorm","code":"8123","display":"phenelzine"}]}}`),
		res("MedicationStatement", `{"resourceType":"MedicationStatement","status":"stopped","medicationCodeableConcept":{"coding":[{"system":"http://www.nlm.nih.gov/research/umls/rxnorm","code":"6470"}]}}`),
		res("MedicationStatement", `{"resourceType":"MedicationStatement","status":"entered-in-error","medicationCodeableConcept":{"text":"diazepam"}}`),
		res("MedicationStatement", `{"resourceType":"MedicationStatement","status":"completed","medicationCodeableConcept":{"text":"clonazepam"}}`),
		res("MedicationRequest", `{"resourceType":"MedicationRequest","status":"active","medicationCodeableConcept":{"text":"Alprazolam 0.5 mg tablet","coding":[{"system":"http://snomed.info/sct","code":"386983007"}]}}`),
		res("MedicationRequest", `{"resourceType":"MedicationRequest","status":"cancelled","medicationCodeableConcept":{"text":"lorazepam"}}`),
		res("MedicationRequest", `{"resourceType":"MedicationRequest","status":"on-hold","contained":[{"resourceType":"Medication","id":"m1","code":{"coding":[{"system":"http://www.nlm.nih.gov/research/umls/rxnorm","code":"10734","display":"tranylcypromine"}]}}],"medicationReference":{"reference":"#m1"}}`),
		res("MedicationStatement", `{"resourceType":"MedicationStatement","status":"intended","medicationReference":{"reference":"Medication/elsewhere","display":"Selegiline patch"}}`),
		res("Observation", `{"resourceType":"Observation","status":"final","code":{"text":"lorazepam"}}`),
	}
	want := []rules.Medication{
		{RxNorm: "8123", Name: "phenelzine"},
		{Name: "Alprazolam 0.5 mg tablet"},
		{RxNorm: "10734", Name: "tranylcypromine"},
		{Name: "Selegiline patch"},
	}
	if got := pharmacy.Medications(in); !slices.Equal(got, want) {
		t.Errorf("Medications =\n%+v\nwant\n%+v", got, want)
	}
}

// TestPartnerMedicationWarns: an MAOI a partner EHR records for the
// patient (stored as the sync pull stores it) puts a warning on the
// prescription, in the intake result and in a requested Task, and the
// NewRx is still sent; a stopped one does not.
func TestPartnerMedicationWarns(t *testing.T) {
	t.Parallel()
	patient := mappers.ID("Patient", "pt-700001")
	phenelzine := func(status string) store.PullPage {
		r := store.Resource{Type: "MedicationStatement", ID: "ms-1", PatientID: patient, Body: []byte(`{"resourceType":"MedicationStatement","id":"ms-1","status":"` + status +
			`","medicationCodeableConcept":{"coding":[{"system":"http://www.nlm.nih.gov/research/umls/rxnorm","code":"8123","display":"phenelzine"}]},"subject":{"reference":"Patient/` + patient + `"}}`)}
		return store.PullPage{PartnerID: "ehr-a", PatientID: patient, Type: r.Type, Resources: []store.Pulled{{Resource: r, RemoteID: "remote-1"}}}
	}
	for _, tc := range []struct {
		dialect, status string
		want            []string
	}{
		{"sqlite", "active", []string{rules.CodeInteractionPrefix + "maoi"}},
		{"sqlite", "stopped", nil},
		{"postgres", "active", []string{rules.CodeInteractionPrefix + "maoi"}},
	} {
		t.Run(tc.dialect+"/"+tc.status, func(t *testing.T) {
			t.Parallel()
			st := openStore(t, tc.dialect)
			if _, err := st.StorePulled(context.Background(), phenelzine(tc.status)); err != nil {
				t.Fatal(err)
			}
			in, ph := gatewayWith(t, st, sim.Config{}, func(p *pharmacy.Prescriptions) *pharmacy.Prescriptions { return p.WithExternal(st) })
			doc := kaptest.Example(kaptest.HomeDosing)
			res, err := in.Put(context.Background(), "ep-700001", doc)
			if err != nil {
				t.Fatal(err)
			}
			c := res.Prescriptions[0]
			if c.MessageID == "" || !slices.Equal(codes(c), tc.want) {
				t.Fatalf("checked %+v, want sent with %v", c, tc.want)
			}
			waitFor(t, ph, 1)
			ep, _ := kap.Decode(doc)
			id := pharmacy.TaskID(script.OrderNumber(ep, 0), pharmacy.TaskBlocked)
			if tc.want == nil {
				waitNoTask(t, st, id)
				return
			}
			task := waitTask(t, st, id, "requested")
			if got := gjson.GetBytes(task, "businessStatus.text").String(); got != "warning" {
				t.Errorf("task business status %q, want warning", got)
			}
			if got := gjson.GetBytes(task, "input.0.type.text").String(); got != "warn: interaction-maoi" {
				t.Errorf("task input %q", got)
			}
			fhirvalid.New(t).Check(t, task)
		})
	}
}

// waitNoTask waits for the queued Task jobs to run and checks that no Task
// id was written.
func waitNoTask(t testing.TB, st *store.Store, id string) {
	t.Helper()
	time.Sleep(time.Second)
	if _, err := st.Read(context.Background(), "Task", id); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Task %s: %v, want none", id, err)
	}
}
