package fhirjson_test

import (
	"encoding/json"
	"testing"

	r4 "github.com/samply/golang-fhir-models/fhir-models/fhir"
)

// The fixtures below are realistic KAP resources as a mapper would build
// them, including the empty slices, empty structs and pointers to empty
// strings that mappers leave behind and Marshal must remove.

func ptr[T any](v T) *T { return &v }

func ref(s string) *r4.Reference { return &r4.Reference{Reference: ptr(s)} }

func concept(system, code, display string) r4.CodeableConcept {
	return r4.CodeableConcept{Coding: []r4.Coding{{System: ptr(system), Code: ptr(code), Display: ptr(display)}}}
}

func cc(system, code, display string) *r4.CodeableConcept {
	c := concept(system, code, display)
	return &c
}

func narrative(text string) *r4.Narrative {
	return &r4.Narrative{Status: r4.NarrativeStatusGenerated, Div: `<div xmlns="http://www.w3.org/1999/xhtml">` + text + `</div>`}
}

const (
	snomed = "http://snomed.info/sct"
	rxnorm = "http://www.nlm.nih.gov/research/umls/rxnorm"
	loinc  = "http://loinc.org"
	ucum   = "http://unitsofmeasure.org"
	kapSys = "https://kapgw.example/fhir/CodeSystem/kap"
)

func patient() r4.Patient {
	return r4.Patient{
		Id:         ptr("p1"),
		Meta:       &r4.Meta{},
		Language:   ptr(""),
		Identifier: []r4.Identifier{{System: ptr("https://clinic.example/mrn"), Value: ptr("MRN-0001")}, {}},
		Active:     ptr(true),
		Name:       []r4.HumanName{{Family: ptr("Example"), Given: []string{"Test", ""}}},
		Telecom:    []r4.ContactPoint{},
		Gender:     ptr(r4.AdministrativeGenderFemale),
		BirthDate:  ptr("1980-01-01"),
		Address:    []r4.Address{{}},
	}
}

func practitioner() r4.Practitioner {
	return r4.Practitioner{
		Id:            ptr("pr1"),
		Identifier:    []r4.Identifier{{System: ptr("http://hl7.org/fhir/sid/us-npi"), Value: ptr("1234567893")}},
		Name:          []r4.HumanName{{Family: ptr("Doctor"), Given: []string{"Test"}, Prefix: []string{}}},
		Qualification: []r4.PractitionerQualification{{Code: concept("http://terminology.hl7.org/CodeSystem/v2-0360", "MD", "Doctor of Medicine")}},
	}
}

func practitionerRole() r4.PractitionerRole {
	return r4.PractitionerRole{
		Id:           ptr("prr1"),
		Active:       ptr(true),
		Practitioner: ref("Practitioner/pr1"),
		Organization: ref("Organization/o1"),
		Code:         []r4.CodeableConcept{concept("http://nucc.org/provider-taxonomy", "2084P0800X", "Psychiatry")},
		Specialty:    []r4.CodeableConcept{{}},
	}
}

func organization() r4.Organization {
	return r4.Organization{
		Id:     ptr("o1"),
		Active: ptr(true),
		Name:   ptr("Example KAP Clinic"),
		Alias:  []string{""},
		Type:   []r4.CodeableConcept{concept("http://terminology.hl7.org/CodeSystem/organization-type", "prov", "Healthcare Provider")},
	}
}

func careTeam() r4.CareTeam {
	return r4.CareTeam{
		Id:      ptr("ct1"),
		Status:  ptr(r4.CareTeamStatusActive),
		Name:    ptr("KAP care team"),
		Subject: ref("Patient/p1"),
		Participant: []r4.CareTeamParticipant{{
			Role:   []r4.CodeableConcept{concept(snomed, "309343006", "Physician")},
			Member: ref("Practitioner/pr1"),
		}},
		Note: []r4.Annotation{},
	}
}

func condition() r4.Condition {
	return r4.Condition{
		Id:                 ptr("c1"),
		ClinicalStatus:     cc("http://terminology.hl7.org/CodeSystem/condition-clinical", "active", "Active"),
		VerificationStatus: cc("http://terminology.hl7.org/CodeSystem/condition-ver-status", "confirmed", "Confirmed"),
		Code:               cc(snomed, "370143000", "Major depressive disorder"),
		Subject:            r4.Reference{Reference: ptr("Patient/p1")},
		OnsetDateTime:      ptr(""),
		RecordedDate:       ptr("2024-03-01"),
	}
}

func episodeOfCare() r4.EpisodeOfCare {
	return r4.EpisodeOfCare{
		Id:                   ptr("eoc1"),
		Status:               r4.EpisodeOfCareStatusActive,
		Type:                 []r4.CodeableConcept{concept(kapSys, "kap-episode", "KAP episode")},
		Patient:              r4.Reference{Reference: ptr("Patient/p1")},
		ManagingOrganization: ref("Organization/o1"),
		Period:               &r4.Period{Start: ptr("2024-03-01"), End: ptr("")},
		Team:                 []r4.Reference{*ref("CareTeam/ct1")},
	}
}

func carePlan() r4.CarePlan {
	return r4.CarePlan{
		Id:      ptr("cp1"),
		Text:    narrative("KAP treatment plan"),
		Status:  r4.RequestStatusActive,
		Intent:  r4.CarePlanIntentPlan,
		Title:   ptr("KAP induction"),
		Subject: r4.Reference{Reference: ptr("Patient/p1")},
		Period:  &r4.Period{Start: ptr("2024-03-01")},
		Activity: []r4.CarePlanActivity{{Detail: &r4.CarePlanActivityDetail{
			Kind:   ptr(r4.CarePlanActivityKindMedicationRequest),
			Code:   cc(kapSys, "kap-session", "KAP dosing session"),
			Status: r4.CarePlanActivityStatusScheduled,
			ScheduledTiming: &r4.Timing{Repeat: &r4.TimingRepeat{
				Count: ptr(6), Period: ptr(json.Number("1")), PeriodUnit: ptr("wk"),
			}},
		}}},
		Note: []r4.Annotation{{Text: ""}},
	}
}

func encounter() r4.Encounter {
	return r4.Encounter{
		Id:            ptr("e1"),
		Status:        r4.EncounterStatusFinished,
		Class:         r4.Coding{System: ptr("http://terminology.hl7.org/CodeSystem/v3-ActCode"), Code: ptr("AMB"), Display: ptr("ambulatory")},
		Type:          []r4.CodeableConcept{concept(kapSys, "kap-session", "KAP dosing session")},
		Subject:       ref("Patient/p1"),
		Period:        &r4.Period{Start: ptr("2024-03-05T10:00:00-05:00"), End: ptr("2024-03-05T12:00:00-05:00")},
		Length:        &r4.Duration{Value: ptr(json.Number("120")), Unit: ptr("min"), System: ptr(ucum), Code: ptr("min")},
		EpisodeOfCare: []r4.Reference{*ref("EpisodeOfCare/eoc1")},
		Participant:   []r4.EncounterParticipant{{Individual: ref("Practitioner/pr1"), Type: []r4.CodeableConcept{}}},
	}
}

func ketamineCode() r4.CodeableConcept {
	return concept(rxnorm, "6130", "ketamine")
}

func medication() r4.Medication {
	return r4.Medication{
		Id:   ptr("m1"),
		Code: &r4.CodeableConcept{Coding: []r4.Coding{{System: ptr(rxnorm), Code: ptr("6130"), Display: ptr("ketamine")}}, Text: ptr("")},
		Form: cc(snomed, "385055001", "Tablet"),
		Ingredient: []r4.MedicationIngredient{{
			ItemCodeableConcept: ketamineCode(),
			Strength: &r4.Ratio{
				Numerator:   &r4.Quantity{Value: ptr(json.Number("0.5")), Unit: ptr("mg"), System: ptr(ucum), Code: ptr("mg")},
				Denominator: &r4.Quantity{Value: ptr(json.Number("1")), Unit: ptr("1"), System: ptr(ucum), Code: ptr("1")},
			},
		}},
	}
}

func dosage() []r4.Dosage {
	return []r4.Dosage{{
		Text:   ptr("200 mg sublingual once per session"),
		Timing: &r4.Timing{Repeat: &r4.TimingRepeat{Frequency: ptr(1), Period: ptr(json.Number("1")), PeriodUnit: ptr("wk")}},
		Route:  cc(snomed, "37839007", "Sublingual route"),
		DoseAndRate: []r4.DosageDoseAndRate{{
			DoseQuantity: &r4.Quantity{Value: ptr(json.Number("200")), Unit: ptr("mg"), System: ptr(ucum), Code: ptr("mg")},
		}},
	}}
}

func medicationRequest() r4.MedicationRequest {
	return r4.MedicationRequest{
		Id:                        ptr("mr1"),
		Status:                    "active",
		Intent:                    "order",
		MedicationCodeableConcept: ketamineCode(),
		Subject:                   r4.Reference{Reference: ptr("Patient/p1")},
		Encounter:                 ref("Encounter/e1"),
		AuthoredOn:                ptr("2024-03-01"),
		Requester:                 ref("Practitioner/pr1"),
		DosageInstruction:         dosage(),
		DispenseRequest: &r4.MedicationRequestDispenseRequest{
			NumberOfRepeatsAllowed: ptr(0),
			Quantity:               &r4.Quantity{Value: ptr(json.Number("6")), Unit: ptr("tablet")},
		},
		Substitution: &r4.MedicationRequestSubstitution{AllowedBoolean: false},
		Note:         []r4.Annotation{},
	}
}

func medicationAdministration() r4.MedicationAdministration {
	return r4.MedicationAdministration{
		Id:                  ptr("ma1"),
		Status:              "completed",
		MedicationReference: r4.Reference{Reference: ptr("Medication/m1")},
		Subject:             r4.Reference{Reference: ptr("Patient/p1")},
		Context:             ref("Encounter/e1"),
		EffectivePeriod:     r4.Period{Start: ptr("2024-03-05T10:05:00-05:00"), End: ptr("2024-03-05T10:20:00-05:00")},
		Performer:           []r4.MedicationAdministrationPerformer{{Actor: r4.Reference{Reference: ptr("Practitioner/pr1")}}},
		Request:             ref("MedicationRequest/mr1"),
		Dosage: &r4.MedicationAdministrationDosage{
			Route: cc(snomed, "37839007", "Sublingual route"),
			Dose:  &r4.Quantity{Value: ptr(json.Number("200")), Unit: ptr("mg"), System: ptr(ucum), Code: ptr("mg")},
		},
	}
}

func medicationDispense() r4.MedicationDispense {
	return r4.MedicationDispense{
		Id:                        ptr("md1"),
		Status:                    "completed",
		MedicationCodeableConcept: ketamineCode(),
		Subject:                   ref("Patient/p1"),
		AuthorizingPrescription:   []r4.Reference{*ref("MedicationRequest/mr1")},
		Quantity:                  &r4.Quantity{Value: ptr(json.Number("6")), Unit: ptr("tablet")},
		DaysSupply:                &r4.Quantity{Value: ptr(json.Number("42")), Unit: ptr("day"), System: ptr(ucum), Code: ptr("d")},
		WhenHandedOver:            ptr("2024-03-02T09:00:00Z"),
		Substitution:              &r4.MedicationDispenseSubstitution{WasSubstituted: false},
	}
}

func observation() r4.Observation {
	return r4.Observation{
		Id:                ptr("obs1"),
		Status:            r4.ObservationStatusFinal,
		Category:          []r4.CodeableConcept{concept("http://terminology.hl7.org/CodeSystem/observation-category", "survey", "Survey")},
		Code:              concept(loinc, "44261-6", "Patient Health Questionnaire 9 item (PHQ-9) total score [Reported]"),
		Subject:           ref("Patient/p1"),
		Encounter:         ref("Encounter/e1"),
		EffectiveDateTime: ptr("2024-03-05T09:30:00-05:00"),
		ValueQuantity:     &r4.Quantity{Value: ptr(json.Number("1e-7")), Unit: ptr("{score}"), System: ptr(ucum), Code: ptr("{score}")},
		Component: []r4.ObservationComponent{{
			Code:          concept(loinc, "8480-6", "Systolic blood pressure"),
			ValueQuantity: &r4.Quantity{Value: ptr(json.Number("100")), Unit: ptr("mmHg"), System: ptr(ucum), Code: ptr("mm[Hg]")},
		}, {
			Code:          concept(loinc, "8462-4", "Diastolic blood pressure"),
			ValueQuantity: &r4.Quantity{Value: ptr(json.Number("0.5")), Unit: ptr("mmHg"), System: ptr(ucum), Code: ptr("mm[Hg]")},
		}},
		Interpretation: []r4.CodeableConcept{},
	}
}

func adverseEvent() r4.AdverseEvent {
	return r4.AdverseEvent{
		Id:            ptr("ae1"),
		Actuality:     r4.AdverseEventActualityActual,
		Event:         cc(snomed, "422587007", "Nausea"),
		Subject:       r4.Reference{Reference: ptr("Patient/p1")},
		Encounter:     ref("Encounter/e1"),
		Date:          ptr("2024-03-05T10:40:00-05:00"),
		SuspectEntity: []r4.AdverseEventSuspectEntity{{Instance: r4.Reference{Reference: ptr("Medication/m1")}}},
		Contributor:   []r4.Reference{},
	}
}

func provenance() r4.Provenance {
	return r4.Provenance{
		Id:       ptr("prov1"),
		Target:   []r4.Reference{*ref("Encounter/e1")},
		Recorded: "2024-03-05T12:00:00.000Z",
		Agent:    []r4.ProvenanceAgent{{Who: r4.Reference{Reference: ptr("Organization/o1")}}},
		Entity:   []r4.ProvenanceEntity{{Role: r4.ProvenanceEntityRoleSource, What: r4.Reference{Display: ptr("clinic episode document")}}},
	}
}

func task() r4.Task {
	return r4.Task{
		Id:         ptr("t1"),
		Status:     r4.TaskStatusRequested,
		Intent:     "order",
		Code:       cc("http://hl7.org/fhir/CodeSystem/task-code", "fulfill", "Fulfill the focal request"),
		Focus:      ref("MedicationRequest/mr1"),
		For:        ref("Patient/p1"),
		AuthoredOn: ptr("2024-03-01T08:00:00Z"),
		Input: []r4.TaskInput{
			{Type: concept(kapSys, "pharmacy", "Pharmacy"), ValueString: "Compounding pharmacy"},
			{Type: concept(kapSys, "sessions", "Number of sessions"), ValueInteger: 6},
			{Type: concept(kapSys, "urgent", "Urgent"), ValueBoolean: false},
		},
	}
}

func auditEvent() r4.AuditEvent {
	return r4.AuditEvent{
		Id:       ptr("ae-audit1"),
		Type:     r4.Coding{System: ptr("http://terminology.hl7.org/CodeSystem/audit-event-type"), Code: ptr("rest"), Display: ptr("RESTful Operation")},
		Subtype:  []r4.Coding{{System: ptr("http://hl7.org/fhir/restful-interaction"), Code: ptr("read"), Display: ptr("read")}},
		Action:   ptr(r4.AuditEventActionR),
		Recorded: "2024-03-05T12:00:00.000Z",
		Outcome:  ptr(r4.AuditEventOutcome0),
		Agent:    []r4.AuditEventAgent{{Who: &r4.Reference{Identifier: &r4.Identifier{System: ptr("https://kapgw.example/client"), Value: ptr("partner-ehr")}}, Requestor: true}},
		Source:   r4.AuditEventSource{Observer: r4.Reference{Display: ptr("kapgw")}},
		Entity:   []r4.AuditEventEntity{{What: ref("Patient/p1"), SecurityLabel: []r4.Coding{}}},
	}
}

func operationOutcome() r4.OperationOutcome {
	return r4.OperationOutcome{
		Id:    ptr("oo1"),
		Issue: []r4.OperationOutcomeIssue{{Severity: r4.IssueSeverityError, Code: r4.IssueTypeInvalid, Diagnostics: ptr("Encounter.status is required"), Expression: []string{"Encounter.status"}}},
	}
}

func capabilityStatement() r4.CapabilityStatement {
	return r4.CapabilityStatement{
		Status:         r4.PublicationStatusActive,
		Date:           "2024-03-01",
		Kind:           r4.CapabilityStatementKindInstance,
		Software:       &r4.CapabilityStatementSoftware{Name: "kapgw", Version: ptr("")},
		Implementation: &r4.CapabilityStatementImplementation{Description: "kapgw FHIR API", Url: ptr("https://kapgw.example/fhir")},
		FhirVersion:    r4.FHIRVersion4_0_1,
		Format:         []string{"json"},
		Rest: []r4.CapabilityStatementRest{{
			Mode: r4.RestfulCapabilityModeServer,
			Resource: []r4.CapabilityStatementRestResource{{
				Type:        r4.ResourceTypePatient,
				Interaction: []r4.CapabilityStatementRestResourceInteraction{{Code: r4.TypeRestfulInteractionRead}},
				SearchParam: []r4.CapabilityStatementRestResourceSearchParam{{Name: "identifier", Type: r4.SearchParamTypeToken}},
			}},
		}},
	}
}

func codeSystem() r4.CodeSystem {
	return r4.CodeSystem{
		Id:      ptr("kap"),
		Url:     ptr(kapSys),
		Name:    ptr("KAPCodes"),
		Status:  r4.PublicationStatusActive,
		Content: r4.CodeSystemContentModeComplete,
		Concept: []r4.CodeSystemConcept{
			{Code: "kap-episode", Display: ptr("KAP episode")},
			{Code: "kap-session", Display: ptr("KAP dosing session"), Designation: []r4.CodeSystemConceptDesignation{}},
		},
	}
}

// bundle is a searchset whose entries were encoded with Marshal, as the FHIR
// API builds them.
func bundle(tb testing.TB) r4.Bundle {
	tb.Helper()
	return r4.Bundle{
		Id:    ptr("b1"),
		Type:  r4.BundleTypeSearchset,
		Total: ptr(1),
		Link:  []r4.BundleLink{{Relation: "self", Url: "https://kapgw.example/fhir/Encounter?patient=p1"}},
		Entry: []r4.BundleEntry{{
			FullUrl:  ptr("https://kapgw.example/fhir/Encounter/e1"),
			Resource: mustMarshal(tb, encounter()),
			Search:   &r4.BundleEntrySearch{Mode: ptr(r4.SearchEntryModeMatch)},
		}},
	}
}
