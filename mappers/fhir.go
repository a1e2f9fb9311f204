package mappers

import (
	"encoding/json"
	"strconv"

	r4 "github.com/samply/golang-fhir-models/fhir-models/fhir"
)

// Code systems and identifier systems defined outside the gateway.
const (
	sysLOINC      = "http://loinc.org"
	sysSNOMED     = "http://snomed.info/sct"
	sysRxNorm     = "http://www.nlm.nih.gov/research/umls/rxnorm"
	sysUCUM       = "http://unitsofmeasure.org"
	sysICD10CM    = "http://hl7.org/fhir/sid/icd-10-cm"
	sysNPI        = "http://hl7.org/fhir/sid/us-npi"
	sysDEA        = "urn:oid:2.16.840.1.113883.4.814"
	sysNCPDP      = "http://terminology.hl7.org/NamingSystem/NCPDPProviderIdentificationNumber"
	sysV2IDType   = "http://terminology.hl7.org/CodeSystem/v2-0203"
	sysActCode    = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
	sysActStatus  = "http://terminology.hl7.org/CodeSystem/v3-ActStatus"
	sysPartType   = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
	sysObsCat     = "http://terminology.hl7.org/CodeSystem/observation-category"
	sysCondClin   = "http://terminology.hl7.org/CodeSystem/condition-clinical"
	sysCondVer    = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
	sysCondCat    = "http://terminology.hl7.org/CodeSystem/condition-category"
	sysAESeverity = "http://terminology.hl7.org/CodeSystem/adverse-event-severity"
	sysProvAgent  = "http://terminology.hl7.org/CodeSystem/provenance-participant-type"
	sysCPCategory = "http://hl7.org/fhir/us/core/CodeSystem/careplan-category"
)

// Profiles the mapping claims; each is satisfied by what it emits.
const (
	profUSCore       = "http://hl7.org/fhir/us/core/StructureDefinition/"
	profPatient      = profUSCore + "us-core-patient"
	profPractitioner = profUSCore + "us-core-practitioner"
	profOrganization = profUSCore + "us-core-organization"
	profCondition    = profUSCore + "us-core-condition-problems-health-concerns"
	profEncounter    = profUSCore + "us-core-encounter"
	profCarePlan     = profUSCore + "us-core-careplan"
	profMedication   = profUSCore + "us-core-medication"
	profMedRequest   = profUSCore + "us-core-medicationrequest"
	profUSCoreBP     = profUSCore + "us-core-blood-pressure"
	profUSCoreHR     = profUSCore + "us-core-heart-rate"
	profUSCoreSpO2   = profUSCore + "us-core-pulse-oximetry"
	profR4           = "http://hl7.org/fhir/StructureDefinition/"
	profVitalBP      = profR4 + "bp"
	profVitalHR      = profR4 + "heartrate"
	profVitalSpO2    = profR4 + "oxygensat"
)

func ptr[T any](v T) *T { return &v }

func ref(typ, id string) r4.Reference {
	return r4.Reference{Reference: ptr(typ + "/" + id)}
}

func refp(typ, id string) *r4.Reference {
	r := ref(typ, id)
	return &r
}

// coding allocates its three strings together: mapping allocates mostly
// small strings, and this keeps Map within its time budget.
func coding(system, code, display string) r4.Coding {
	s := &[3]string{system, code, display}
	c := r4.Coding{System: &s[0], Code: &s[1]}
	if display != "" {
		c.Display = &s[2]
	}
	return c
}

// concept is a CodeableConcept with one coding and an optional text.
func concept(system, code, display, text string) r4.CodeableConcept {
	cc := r4.CodeableConcept{Coding: []r4.Coding{coding(system, code, display)}}
	if text != "" {
		cc.Text = ptr(text)
	}
	return cc
}

func textConcept(text string) r4.CodeableConcept {
	return r4.CodeableConcept{Text: ptr(text)}
}

func meta(profiles ...string) *r4.Meta {
	if len(profiles) == 0 {
		return nil
	}
	return &r4.Meta{Profile: profiles}
}

// number renders a float the shortest way that round-trips, as FHIR
// decimals are written (100, not 1e+02 or 100.0).
func number(v float64) *json.Number {
	n := json.Number(strconv.FormatFloat(v, 'f', -1, 64))
	return &n
}

func intNumber(v int) *json.Number {
	n := json.Number(strconv.Itoa(v))
	return &n
}

// ucum is a Quantity in a UCUM unit.
func ucum(v *json.Number, unit, code string) *r4.Quantity {
	s := &[3]string{unit, sysUCUM, code}
	return &r4.Quantity{Value: v, Unit: &s[0], System: &s[1], Code: &s[2]}
}

func period(start, end string) *r4.Period {
	if start == "" && end == "" {
		return nil
	}
	p := &r4.Period{}
	if start != "" {
		p.Start = ptr(start)
	}
	if end != "" {
		p.End = ptr(end)
	}
	return p
}

func optional(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}
