package kaptest

import "strings"

// schema lists well-formed documents that break the JSON schema.
func schema() []BadDocument {
	return []BadDocument{
		setBad("bad-enum-status", HomeDosing, "status", "paused", "code-invalid"),
		setBad("bad-enum-session-kind", HomeDosing, "sessions[1].kind", "ceremony", "code-invalid"),
		setBad("bad-const-country", HomeDosing, "patient.address.country", "CA", "code-invalid"),
		setBad("bad-id-pattern", HomeDosing, "id", "ep 700001", "value"),
		setBad("too-long-id", HomeDosing, "sessions[0].id", strings.Repeat("s", 65), "too-long"),
		bad("missing-top-level-field", set(HomeDosing, "patient", remove{}), "required", "patient"),
		bad("missing-nested-field", set(HomeDosing, "patient.birthDate", remove{}), "required", "patient.birthDate"),
		bad("missing-field-in-array-element", set(HomeDosing, "sessions[3].dose.route", remove{}), "required", "sessions[3].dose.route"),
		bad("missing-prescription-sig", set(FourDosings, "prescriptions[0].sig", remove{}), "required", "prescriptions[0].sig"),
		bad("empty-indications", set(HomeDosing, "indications", []any{}), "required", "indications"),
		bad("empty-given-names", set(HomeDosing, "patient.name.given", []any{}), "required", "patient.name.given"),
		setBad("bad-date", HomeDosing, "patient.birthDate", "02/19/1984", "value"),
		setBad("impossible-date", HomeDosing, "patient.birthDate", "1984-02-30", "value"),
		setBad("date-time-without-zone", HomeDosing, "sessions[0].start", "2026-03-23T18:00:00", "value"),
		setBad("bad-state-code", HomeDosing, "patient.address.state", "Fla", "value"),
		setBad("bad-postal-code", HomeDosing, "patient.address.postalCode", "3313", "value"),
		setBad("bad-email", HomeDosing, "patient.email", "okafor-at-example.org", "value"),
		setBad("bad-npi-pattern", HomeDosing, "careTeam.prescriber.npi", "159083016", "value"),
		setBad("bad-dea-pattern", HomeDosing, "careTeam.prescriber.dea", "ma1318600", "value"),
		setBad("bad-icd10-code", HomeDosing, "indications[0].code", "generalized anxiety", "value"),
		setBad("empty-sig", HomeDosing, "prescriptions[0].sig", "", "value"),
		setBad("too-long-note-to-pharmacist", HomeDosing, "prescriptions[0].noteToPharmacist", strings.Repeat("n", 211), "too-long"),
		bad("negative-refills", set(HomeDosing, "prescriptions[0].refills", -1), "value", "prescriptions[0].refills"),
		bad("days-supply-91", set(HomeDosing, "prescriptions[0].daysSupply", 91), "value", "prescriptions[0].daysSupply"),
		bad("dose-mg-zero", set(HomeDosing, "sessions[3].dose.mg", 0), "value", "sessions[3].dose.mg"),
		bad("score-negative", set(HomeDosing, "measures[0].score", -1), "value", "measures[0].score"),
		bad("spo2-over-100", set(FourDosings, "sessions[2].vitals[0].spo2", 101), "value", "sessions[2].vitals[0].spo2"),
	}
}

// semantic lists schema-valid documents that break the rules the schema
// cannot express.
func semantic() []BadDocument {
	return []BadDocument{
		setBad("prescriber-npi-check-digit", HomeDosing, "careTeam.prescriber.npi", "1590830167", "value"),
		setBad("therapist-npi-check-digit", FourDosings, "careTeam.therapist.npi", "1212233071", "value"),
		setBad("organization-npi-check-digit", HomeDosing, "careTeam.organization.npi", "1234567890", "value"),
		setBad("pharmacy-npi-check-digit", HomeDosing, "pharmacy.npi", "1987654320", "value"),
		setBad("prescriber-dea-check-digit", HomeDosing, "careTeam.prescriber.dea", "MA1318601", "value"),
		setBad("therapist-dea-check-digit", FourDosings, "careTeam.therapist.dea", "AB1234567", "value"),
		bad("prescriber-without-dea", set(HomeDosing, "careTeam.prescriber.dea", remove{}), "required", "careTeam.prescriber.dea"),
		bad("duplicate-session-id", set(HomeDosing, "sessions[2].id", "ep-700001-s2"), "business-rule", "sessions[2].id"),
		bad("duplicate-measure-id", set(FourDosings, "measures[4].id", "ep-700002-m1"), "business-rule", "measures[4].id"),
		bad("duplicate-prescription-id", set(HomeDosing, "prescriptions[1]", secondPrescription("ep-700001-rx1")), "business-rule", "prescriptions[1].id"),
		bad("dangling-session-id", set(HomeDosing, "measures[0].sessionId", "ep-700001-s99"), "business-rule", "measures[0].sessionId"),
		bad("dangling-prescription-id", set(FourDosings, "sessions[4].dose.prescriptionId", "ep-700002-rx9"), "business-rule", "sessions[4].dose.prescriptionId"),
		bad("dose-on-preparation-session", set(HomeDosing, "sessions[1].dose", preparationDose()), "business-rule", "sessions[1].dose"),
		setBad("date-time-lower-case", HomeDosing, "sessions[0].start", "2026-03-23t18:00:00z", "value"),
		setBad("date-time-offset-beyond-14h", HomeDosing, "consents[0].signedAt", "2026-03-21T18:00:00+15:00", "value"),
		bad("session-end-before-start", set(HomeDosing, "sessions[0].end", "2026-03-23T17:00:00Z"), "business-rule", "sessions[0].end"),
		bad("session-end-equals-start", set(FourDosings, "sessions[1].end", "2026-07-10T16:00:00Z"), "business-rule", "sessions[1].end"),
		bad("episode-end-before-start", set(HomeDosing, "period.end", "2026-03-01T00:00:00Z"), "business-rule", "period.end"),
		bad("booster-before-dose", set(HomeDosing, "sessions[3].dose.booster.administeredAt", "2026-04-03T18:05:00Z"), "business-rule", "sessions[3].dose.booster.administeredAt"),
		bad("dose-before-prescription-written", set(HomeDosing, "sessions[5].dose.administeredAt", "2026-03-23T19:00:00Z"), "business-rule", "sessions[5].dose.administeredAt"),
		bad("consent-revoked-before-signed", set(HomeDosing, "consents[2].revokedAt", "2026-03-20T18:00:00Z"), "business-rule", "consents[2].revokedAt"),
		bad("item-sum-mismatch", set(HomeDosing, "measures[0].items", []int{2, 2, 2, 2, 2, 2, 1, 0, 0}), "business-rule", "measures[0].items"),
		bad("item-count-wrong", set(HomeDosing, "measures[1].items", []int{3, 3, 3, 3, 3, 2}), "value", "measures[1].items"),
		bad("item-out-of-range", set(HomeDosing, "measures[0].items", []int{4, 2, 2, 2, 1, 1, 1, 1, 0}), "value", "measures[0].items[0]"),
		bad("phq9-score-over-27", set(HomeDosing, "measures[0].score", 28), "value", "measures[0].score"),
		bad("cadss-score-over-92", set(FourDosings, "measures[2].score", 93), "value", "measures[2].score"),
		bad("home-dosing-without-chaperone", set(HomeDosing, "sessions[3].chaperone", remove{}), "required", "sessions[3].chaperone"),
		bad("home-dosing-chaperone-absent", set(FourDosings, "sessions[4].chaperone.present", false), "business-rule", "sessions[4].chaperone.present"),
		bad("diastolic-not-below-systolic", set(HomeDosing, "sessions[3].vitals[0].diastolic", 110), "value", "sessions[3].vitals[0].diastolic"),
		bad("refills-over-schedule-iii-limit", set(FourDosings, "prescriptions[0].refills", 6), "business-rule", "prescriptions[0].refills"),
	}
}

// secondPrescription is a valid prescription with the given id.
func secondPrescription(id string) map[string]any {
	return map[string]any{
		"id": id, "status": "active", "writtenAt": "2026-03-24T20:00:00Z",
		"formulation": map[string]any{"ketamineMgPerUnit": 100, "form": "troche"},
		"quantity":    6, "daysSupply": 30, "refills": 0,
		"sig": "Dissolve 1 troche under the tongue during a supervised session.",
	}
}

// preparationDose is a valid dose of the home-dosing example's prescription.
func preparationDose() map[string]any {
	return map[string]any{
		"prescriptionId": "ep-700001-rx1", "mg": 100, "units": 1,
		"route": "sublingual", "administeredAt": "2026-03-27T18:10:00Z",
	}
}
