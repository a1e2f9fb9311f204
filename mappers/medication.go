package mappers

import (
	"fmt"
	"regexp"
	"strconv"

	r4 "github.com/samply/golang-fhir-models/fhir-models/fhir"

	"github.com/kapgw/kapgw/internal/kap"
)

// ErrReference reports a document naming a session or prescription it does
// not contain; kap Validate refuses such documents.
var ErrReference = fmt.Errorf("dangling reference")

const (
	rxNormKetamine      = "6130"      // ketamine (ingredient)
	snomedLozenge       = "385087003" // Lozenge (dose form)
	snomedSublingual    = "37839007"
	snomedBuccal        = "54471007"
	snomedIntramuscular = "78421000"
	snomedIntravenous   = "47625008"
	snomedNasal         = "46713006"
)

// form describes how a compounded formulation is counted and taken.
type form struct {
	text   string     // dose form as the clinic names it
	coding *r4.Coding // SNOMED CT dose form, when known for sure
	unit   string     // human unit of one unit of the form
	ucum   string     // UCUM code of one unit (annotations are valid UCUM)
	route  string     // route implied by the form, "" when it is not
}

func formOf(f string) form {
	switch f {
	case "troche":
		c := coding(sysSNOMED, snomedLozenge, "Lozenge")
		return form{text: "troche", coding: &c, unit: "troche", ucum: "{troche}", route: "sublingual"}
	case "rapid-dissolve-tablet":
		return form{text: "rapid-dissolve tablet", unit: "tablet", ucum: "{tablet}", route: "sublingual"}
	case "nasal-spray":
		return form{text: "nasal spray", unit: "spray", ucum: "{spray}", route: "intranasal"}
	case "injection":
		return form{text: "injection", unit: "mL", ucum: "mL"}
	}
	return form{text: f, unit: "unit", ucum: "1"}
}

func route(r string) *r4.CodeableConcept {
	var code, display string
	switch r {
	case "sublingual":
		code, display = snomedSublingual, "Sublingual route"
	case "buccal":
		code, display = snomedBuccal, "Buccal route"
	case "intramuscular":
		code, display = snomedIntramuscular, "Intramuscular route"
	case "intravenous":
		code, display = snomedIntravenous, "Intravenous route"
	case "intranasal":
		code, display = snomedNasal, "Nasal route"
	default:
		return nil
	}
	return ptr(concept(sysSNOMED, code, display, r))
}

// medications adds a Medication and a MedicationRequest per prescription,
// then a MedicationAdministration per dose and booster given.
func (b *builder) medications() error {
	for _, rx := range b.ep.Prescriptions {
		b.medication(rx)
	}
	for _, rx := range b.ep.Prescriptions {
		b.medicationRequest(rx)
	}
	for _, s := range b.ep.Sessions {
		if s.Dose == nil {
			continue
		}
		if _, ok := b.rxIdx[s.Dose.PrescriptionID]; !ok {
			return fmt.Errorf("session %s dose: prescription %s: %w", s.ID, s.Dose.PrescriptionID, ErrReference)
		}
		d := s.Dose
		b.administration(s, "dose", d.MG, d.Units, d.AdministeredAt)
		if d.Booster != nil {
			b.administration(s, "booster", d.Booster.MG, d.Booster.Units, d.Booster.AdministeredAt)
		}
	}
	return nil
}

func (b *builder) medication(rx kap.Prescription) {
	id := b.medicationID(rx.ID)
	f := rx.Formulation
	fm := formOf(f.Form)
	name := "Ketamine " + strconv.FormatFloat(f.KetamineMGPerUnit, 'f', -1, 64) + " mg " + fm.text + " (compounded)"
	res := &r4.Medication{
		Id:         ptr(id),
		Meta:       meta(profMedication),
		Identifier: []r4.Identifier{b.ident("medication", b.episodeKey(rx.ID))},
		Code:       ptr(textConcept(name)),
		Status:     ptr("active"),
		Form:       &r4.CodeableConcept{Text: ptr(fm.text)},
		Ingredient: []r4.MedicationIngredient{{
			ItemCodeableConcept: concept(sysRxNorm, rxNormKetamine, "ketamine", ""),
			IsActive:            ptr(true),
			Strength: &r4.Ratio{
				Numerator:   ucum(number(f.KetamineMGPerUnit), "mg", "mg"),
				Denominator: ucum(intNumber(1), fm.unit, fm.ucum),
			},
		}},
		Manufacturer: b.pharmacy,
	}
	if fm.coding != nil {
		res.Form.Coding = []r4.Coding{*fm.coding}
	}
	if f.PharmacyProductID != "" {
		pid := b.ident("pharmacy-product", f.PharmacyProductID)
		pid.Assigner = b.pharmacy
		res.Identifier = append(res.Identifier, pid)
	}
	for _, inactive := range []string{f.Base, f.Flavor} {
		if inactive != "" {
			res.Ingredient = append(res.Ingredient, r4.MedicationIngredient{ItemCodeableConcept: textConcept(inactive), IsActive: ptr(false)})
		}
	}
	b.add("Medication", id, Episode, res)
}

func (b *builder) medicationRequest(rx kap.Prescription) {
	id := b.requestID(rx.ID)
	fm := formOf(rx.Formulation.Form)
	dosage := r4.Dosage{Text: ptr(rx.Sig), Route: route(fm.route)}
	if n, ok := sigUnits(rx.Sig, fm.unit); ok {
		dosage.DoseAndRate = []r4.DosageDoseAndRate{{DoseQuantity: ucum(number(n), fm.unit, fm.ucum)}}
	}
	res := &r4.MedicationRequest{
		Id:                  ptr(id),
		Meta:                meta(profMedRequest),
		Identifier:          []r4.Identifier{b.ident("prescription", b.episodeKey(rx.ID))},
		Status:              rx.Status,
		Intent:              "order",
		MedicationReference: ref("Medication", b.medicationID(rx.ID)),
		Subject:             b.patient,
		AuthoredOn:          optional(rx.WrittenAt),
		Requester:           &b.prescriber,
		ReasonReference:     b.conditions,
		DosageInstruction:   []r4.Dosage{dosage},
		DispenseRequest: &r4.MedicationRequestDispenseRequest{
			NumberOfRepeatsAllowed: ptr(rx.Refills),
			Quantity:               ucum(intNumber(rx.Quantity), fm.unit, fm.ucum),
			ExpectedSupplyDuration: &r4.Duration{Value: intNumber(rx.DaysSupply), Unit: ptr("days"), System: ptr(sysUCUM), Code: ptr("d")},
			Performer:              b.pharmacy,
		},
		Substitution: &r4.MedicationRequestSubstitution{AllowedBoolean: rx.SubstitutionAllowed},
	}
	if rx.NoteToPharmacist != "" {
		res.Note = []r4.Annotation{{Text: rx.NoteToPharmacist}}
	}
	b.add("MedicationRequest", id, Episode, res)
}

// sigPattern finds the units per dose in sigs such as "Dissolve 2
// troche(s) under the tongue": a verb, a number, then the form's unit.
var sigPattern = regexp.MustCompile(`^\s*[A-Za-z]+\s+(\d+(?:\.\d+)?)\s+([A-Za-z]+)`)

// sigUnits reads how many units of the form one dose is, only when the sig
// states it plainly; otherwise the sig text alone carries the dose.
func sigUnits(sig, unit string) (float64, bool) {
	m := sigPattern.FindStringSubmatch(sig)
	if m == nil || len(m[2]) < len(unit) || m[2][:len(unit)] != unit {
		return 0, false
	}
	n, err := strconv.ParseFloat(m[1], 64)
	if err != nil || n <= 0 {
		return 0, false
	}
	return n, true
}

// administration adds the MedicationAdministration of a dose or booster.
func (b *builder) administration(s kap.Session, which string, mg float64, units int, at string) {
	id := ID("MedicationAdministration", b.ep.ID, s.ID, which)
	rxID := s.Dose.PrescriptionID
	fm := formOf(b.ep.Prescriptions[b.rxIdx[rxID]].Formulation.Form)
	dosage := &r4.MedicationAdministrationDosage{Route: route(s.Dose.Route), Dose: ucum(number(mg), "mg", "mg")}
	if units > 0 {
		dosage.Text = ptr(strconv.Itoa(units) + " " + fm.unit + "(s), " + strconv.FormatFloat(mg, 'f', -1, 64) + " mg" + boosterSuffix(which))
	}
	b.add("MedicationAdministration", id, Episode, &r4.MedicationAdministration{
		Id:                  ptr(id),
		Identifier:          []r4.Identifier{b.ident("administration", b.episodeKey(s.ID, which))},
		Status:              "completed",
		MedicationReference: ref("Medication", b.medicationID(rxID)),
		Subject:             b.patient,
		Context:             b.encounterRef(s.ID),
		EffectiveDateTime:   at,
		Request:             refp("MedicationRequest", b.requestID(rxID)),
		Dosage:              dosage,
	})
}

func boosterSuffix(which string) string {
	if which == "booster" {
		return " (booster)"
	}
	return ""
}
