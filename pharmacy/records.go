package pharmacy

import (
	"cmp"
	"context"
	"fmt"
	"strings"

	"github.com/tidwall/gjson"

	"github.com/kapgw/kapgw/internal/store"
	"github.com/kapgw/kapgw/pharmacy/rules"
)

// PatientRecords reads, inside the episode's transaction, the patient's
// prescriptions outside the episode (*store.Store): how a second active
// ketamine prescription in another episode is found.
type PatientRecords interface {
	PatientPrescriptionsTx(ctx context.Context, tx store.Tx, patientID, episodeID string) ([]store.Resource, error)
}

// ExternalRecords reads, inside the episode's transaction, the current
// resources pulled from partner EHRs for a patient of the gateway
// (*store.Store, from the sync pull): their medications warn of
// interactions.
type ExternalRecords interface {
	ExternalResourcesTx(ctx context.Context, tx store.Tx, patientID string, types ...string) ([]store.Resource, error)
}

// externalMedicationTypes are the pulled resource types that say what the
// patient takes.
var externalMedicationTypes = []string{"MedicationStatement", "MedicationRequest"}

// rxNormSystem is the RxNorm code system URI.
const rxNormSystem = "http://www.nlm.nih.gov/research/umls/rxnorm"

// rxNormKetamine is the RxNorm ingredient code of ketamine (DOMAIN.md,
// "check"; the mappers code the ingredient with it).
const rxNormKetamine = "6130"

// patientFacts is what the rules need beyond the episode document.
type patientFacts struct {
	otherActive int
	medications []rules.Medication
}

// facts reads the patient's other prescriptions and partner medications
// once per accepted document.
func (p *Prescriptions) facts(ctx context.Context, tx store.Tx, patientID, episodeID string) (patientFacts, error) {
	var f patientFacts
	if p.records != nil {
		res, err := p.records.PatientPrescriptionsTx(ctx, tx, patientID, episodeID)
		if err != nil {
			return f, fmt.Errorf("other prescriptions: %w", err)
		}
		f.otherActive = activeKetamine(res)
	}
	if p.external != nil {
		res, err := p.external.ExternalResourcesTx(ctx, tx, patientID, externalMedicationTypes...)
		if err != nil {
			return f, fmt.Errorf("partner medications: %w", err)
		}
		f.medications = Medications(res)
	}
	return f, nil
}

// activeKetamine counts the active MedicationRequests in res whose
// medication is ketamine: coded in the request, or in the Medication it
// references (also in res).
func activeKetamine(res []store.Resource) int {
	meds := map[string][]byte{}
	for _, r := range res {
		if r.Type == "Medication" {
			meds["Medication/"+r.ID] = r.Body
		}
	}
	n := 0
	for _, r := range res {
		if r.Type != "MedicationRequest" || gjson.GetBytes(r.Body, "status").String() != "active" {
			continue
		}
		med := gjson.GetBytes(r.Body, "medicationCodeableConcept")
		if ref := gjson.GetBytes(r.Body, "medicationReference.reference").String(); ref != "" {
			med = gjson.ParseBytes(meds[ref])
		}
		if isKetamine(med) {
			n++
		}
	}
	return n
}

// isKetamine reports whether a CodeableConcept or a Medication names
// ketamine: by RxNorm code or by name, in itself, its code or an
// ingredient.
func isKetamine(v gjson.Result) bool {
	for _, cc := range []gjson.Result{v, v.Get("code")} {
		if strings.Contains(strings.ToLower(cc.Get("text").String()), "ketamine") {
			return true
		}
		for _, c := range cc.Get("coding").Array() {
			if c.Get("system").String() == rxNormSystem && c.Get("code").String() == rxNormKetamine {
				return true
			}
		}
	}
	for _, in := range v.Get("ingredient").Array() {
		if isKetamine(in.Get("itemCodeableConcept")) {
			return true
		}
	}
	return false
}

// inactive are the statuses of a MedicationStatement or MedicationRequest
// that mean the patient is not taking the medication now.
var inactive = map[string]bool{
	"stopped": true, "entered-in-error": true, "completed": true, "cancelled": true, "not-taken": true,
}

// Medications converts pulled MedicationStatement and MedicationRequest
// bodies into the medications the interaction rules read: one per RxNorm
// coding (with the concept's name), or one by name when the concept has no
// RxNorm code. Statements and requests that are no longer taken (stopped,
// completed, cancelled, not-taken, entered-in-error) are left out, as are
// other types. A medicationReference to a contained Medication is
// followed; one to a separate resource is not (only its display is read).
func Medications(res []store.Resource) []rules.Medication {
	var out []rules.Medication
	for _, r := range res {
		if r.Type != "MedicationStatement" && r.Type != "MedicationRequest" {
			continue
		}
		if inactive[gjson.GetBytes(r.Body, "status").String()] {
			continue
		}
		out = append(out, conceptMedications(medicationConcept(r.Body))...)
	}
	return out
}

// medicationConcept returns the CodeableConcept naming the medication of a
// statement or request (the code of a contained Medication), and the
// reference's display as a fallback name.
func medicationConcept(body []byte) (gjson.Result, string) {
	if cc := gjson.GetBytes(body, "medicationCodeableConcept"); cc.Exists() {
		return cc, ""
	}
	ref := gjson.GetBytes(body, "medicationReference")
	if id, ok := strings.CutPrefix(ref.Get("reference").String(), "#"); ok {
		for _, c := range gjson.GetBytes(body, "contained").Array() {
			if c.Get("resourceType").String() == "Medication" && c.Get("id").String() == id {
				return c.Get("code"), ref.Get("display").String()
			}
		}
	}
	return gjson.Result{}, ref.Get("display").String()
}

// conceptMedications returns one medication per RxNorm coding of cc, or
// one by name (text, a coding's display, else fallback) when it has none.
func conceptMedications(cc gjson.Result, fallback string) []rules.Medication {
	name := cc.Get("text").String()
	var out []rules.Medication
	for _, c := range cc.Get("coding").Array() {
		display := c.Get("display").String()
		if name == "" {
			name = display
		}
		if c.Get("system").String() == rxNormSystem && c.Get("code").String() != "" {
			out = append(out, rules.Medication{RxNorm: c.Get("code").String(), Name: cmp.Or(display, cc.Get("text").String())})
		}
	}
	if name = cmp.Or(name, fallback); len(out) == 0 && name != "" {
		out = append(out, rules.Medication{Name: name})
	}
	return out
}
