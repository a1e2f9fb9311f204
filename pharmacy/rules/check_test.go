package rules_test

import (
	"slices"
	"testing"
	"time"

	"github.com/kapgw/kapgw/internal/kap"
	"github.com/kapgw/kapgw/internal/kap/kaptest"
	"github.com/kapgw/kapgw/pharmacy/rules"
)

// sendAt is a day after the home-dosing prescription was written.
var sendAt = time.Date(2026, 3, 24, 12, 0, 0, 0, time.UTC)

func episode(t testing.TB, name string) *kap.Episode {
	t.Helper()
	ep, issues := kap.Decode(kaptest.Example(name))
	if issues != nil {
		t.Fatalf("decode %s: %v", name, issues)
	}
	return ep
}

func check(t testing.TB, in rules.Input) []rules.Finding {
	t.Helper()
	set, err := rules.For(in.At)
	if err != nil {
		t.Fatal(err)
	}
	return set.Check(in)
}

func codes(fs []rules.Finding) []string {
	out := make([]string, len(fs))
	for i, f := range fs {
		out[i] = f.Code
	}
	return out
}

func TestExamplesPass(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		at   time.Time
	}{
		{kaptest.HomeDosing, sendAt},
		{kaptest.FourDosings, time.Date(2026, 7, 6, 0, 0, 0, 0, time.UTC)},
	} {
		fs := check(t, rules.Input{Episode: episode(t, tc.name), At: tc.at})
		if len(fs) != 0 {
			t.Errorf("%s: findings %v, want none", tc.name, fs)
		}
	}
}

// ruleCase is one rule with a change that keeps the prescription within it
// and a change that breaks it, applied to the home-dosing example.
type ruleCase struct {
	code   string
	passes func(*rules.Input)
	blocks func(*rules.Input)
}

func ruleCases() []ruleCase {
	rx := func(in *rules.Input) *kap.Prescription { return &in.Episode.Prescriptions[0] }
	prescriber := func(in *rules.Input) *kap.Clinician { return &in.Episode.CareTeam.Prescriber }
	evaluation := func(in *rules.Input) *kap.Session { return &in.Episode.Sessions[0] }
	consent := func(in *rules.Input, kind string) *kap.Consent {
		i := slices.IndexFunc(in.Episode.Consents, func(c kap.Consent) bool { return c.Kind == kind })
		return &in.Episode.Consents[i]
	}
	return []ruleCase{
		{rules.CodePrescriberDEA,
			func(in *rules.Input) { prescriber(in).DEA = "AB1234563" },
			func(in *rules.Input) { prescriber(in).DEA = "MA1318601" }},
		{rules.CodePrescriberDEA,
			func(in *rules.Input) {},
			func(in *rules.Input) { prescriber(in).DEA = "" }},
		{rules.CodeLicenseState,
			func(in *rules.Input) { in.Episode.Patient.Address.State = "CO" }, // telehealth: where the patient was (FL) counts
			func(in *rules.Input) { evaluation(in).PatientLocationState = "CO" }},
		{rules.CodeLicenseState,
			func(in *rules.Input) { evaluation(in).Modality = kap.ModalityInPerson },
			func(in *rules.Input) {
				evaluation(in).Modality = kap.ModalityInPerson
				in.Episode.Patient.Address.State = "CO"
			}},
		{rules.CodeLicenseExpired,
			func(in *rules.Input) { prescriber(in).Licenses[0].Expires = "2026-03-24" },
			func(in *rules.Input) { prescriber(in).Licenses[0].Expires = "2026-03-23" }},
		{rules.CodeMedicalEvaluation,
			func(in *rules.Input) { evaluation(in).End = "2026-03-23T19:59:59Z" },
			func(in *rules.Input) { evaluation(in).End = "2026-03-23T20:00:00Z" }},
		{rules.CodeMedicalEvaluation,
			func(in *rules.Input) {},
			func(in *rules.Input) { evaluation(in).Status = kap.SessionPlanned }},
		{rules.CodeTelehealthEnded,
			func(in *rules.Input) { in.At = time.Date(2026, 12, 31, 23, 59, 0, 0, time.UTC) },
			func(in *rules.Input) { in.At = time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC) }},
		{rules.CodeTelehealthEnded,
			func(in *rules.Input) {
				evaluation(in).Modality = kap.ModalityInPerson
				in.At = time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
			},
			func(in *rules.Input) { in.At = time.Date(2027, 6, 1, 0, 0, 0, 0, time.UTC) }},
		{rules.CodeConsentTreatment,
			func(in *rules.Input) { consent(in, kap.ConsentTreatment).RevokedAt = "2026-03-25T00:00:00Z" },
			func(in *rules.Input) { consent(in, kap.ConsentTreatment).RevokedAt = "2026-03-24T00:00:00Z" }},
		{rules.CodeConsentTreatment,
			func(in *rules.Input) { consent(in, kap.ConsentTreatment).SignedAt = "2026-03-24T12:00:00Z" },
			func(in *rules.Input) { consent(in, kap.ConsentTreatment).SignedAt = "2026-03-24T12:00:01Z" }},
		{rules.CodeConsentTelehealth,
			func(in *rules.Input) {
				consent(in, kap.ConsentTelehealth).Kind = "other"
				for i := range in.Episode.Sessions {
					in.Episode.Sessions[i].Modality = kap.ModalityInPerson
				}
			},
			func(in *rules.Input) { consent(in, kap.ConsentTelehealth).Kind = "other" }},
		{rules.CodeConsentHomeDosing,
			func(in *rules.Input) {
				consent(in, kap.ConsentHomeDosing).Kind = "other"
				in.Episode.Sessions[3].Modality = kap.ModalityInPerson
			},
			func(in *rules.Input) { consent(in, kap.ConsentHomeDosing).Kind = "other" }},
		{rules.CodePatientAge,
			func(in *rules.Input) { in.Episode.Patient.BirthDate = "2008-03-23" },
			func(in *rules.Input) { in.Episode.Patient.BirthDate = "2008-03-24" }},
		{rules.CodeRefills,
			func(in *rules.Input) { rx(in).Refills = 5 },
			func(in *rules.Input) { rx(in).Refills = 6 }},
		{rules.CodeFillWindow,
			func(in *rules.Input) {
				evaluation(in).Modality = kap.ModalityInPerson
				in.At = time.Date(2026, 9, 23, 19, 59, 0, 0, time.UTC)
			},
			func(in *rules.Input) { in.At = time.Date(2026, 9, 23, 20, 0, 0, 0, time.UTC) }},
		{rules.CodeSupply,
			func(in *rules.Input) { rx(in).Quantity = 14 }, // 2 per session, every 5 days, 30 days: 7 sessions
			func(in *rules.Input) { rx(in).Quantity = 15 }},
		{rules.CodeSupply,
			func(in *rules.Input) { rx(in).Quantity = 2 },
			func(in *rules.Input) { rx(in).Quantity = 1 }},
		{rules.CodeSupply,
			func(in *rules.Input) { // no sessions: the sig's 2 troches, every 3 days
				in.Episode.Sessions = in.Episode.Sessions[:3]
				rx(in).Quantity = 22
			},
			func(in *rules.Input) {
				in.Episode.Sessions = in.Episode.Sessions[:3]
				rx(in).Quantity = 23
			}},
		{rules.CodeSupply,
			func(in *rules.Input) { in.Episode.Sessions = in.Episode.Sessions[:3] },
			func(in *rules.Input) {
				in.Episode.Sessions = in.Episode.Sessions[:3]
				rx(in).Sig = "Dissolve under the tongue as directed."
			}},
		{rules.CodeDuplicateActive,
			func(in *rules.Input) {
				in.Episode.Prescriptions = append(in.Episode.Prescriptions, secondRx(kap.RxCompleted))
			},
			func(in *rules.Input) {
				in.Episode.Prescriptions = append(in.Episode.Prescriptions, secondRx(kap.RxActive))
			}},
		{rules.CodeDuplicateActive,
			func(in *rules.Input) { in.OtherActive = 0 },
			func(in *rules.Input) { in.OtherActive = 1 }},
		{rules.CodePharmacyShips,
			func(in *rules.Input) { in.Episode.Pharmacy.ShipsTo = []string{"FL"} },
			func(in *rules.Input) { in.Episode.Pharmacy.ShipsTo = []string{"CO", "CA"} }},
		{rules.CodePharmacyShips,
			func(in *rules.Input) { rx(in).ShipTo = &kap.Address{State: "CO"} },
			func(in *rules.Input) { rx(in).ShipTo = &kap.Address{State: "AK"} }},
		{rules.CodePharmacyShips,
			func(in *rules.Input) {},
			func(in *rules.Input) { in.Episode.Pharmacy = nil }},
		{rules.CodeInteractionPrefix + "maoi",
			func(in *rules.Input) { in.Medications = []rules.Medication{{RxNorm: "36437", Name: "sertraline"}} },
			func(in *rules.Input) { in.Medications = []rules.Medication{{RxNorm: "8123"}} }},
		{rules.CodeInteractionPrefix + "benzodiazepine",
			func(in *rules.Input) { in.Medications = []rules.Medication{{Name: "Sertraline 50 MG Oral Tablet"}} },
			func(in *rules.Input) { in.Medications = []rules.Medication{{Name: "LORazepam 1 MG Oral Tablet"}} }},
	}
}

func secondRx(status string) kap.Prescription {
	return kap.Prescription{ID: "ep-700001-rx2", Status: status, WrittenAt: "2026-03-20T00:00:00Z", Quantity: 2, DaysSupply: 30, Sig: "Dissolve 2 troche(s)"}
}

// TestRules checks every rule in both directions: the passing change leaves
// the rule silent, the breaking change makes it fire.
func TestRules(t *testing.T) {
	t.Parallel()
	for i, tc := range ruleCases() {
		pass := rules.Input{Episode: episode(t, kaptest.HomeDosing), At: sendAt}
		tc.passes(&pass)
		if got := codes(check(t, pass)); slices.Contains(got, tc.code) {
			t.Errorf("case %d %s: passing change gives %v", i, tc.code, got)
		}
		block := rules.Input{Episode: episode(t, kaptest.HomeDosing), At: sendAt}
		tc.blocks(&block)
		if got := codes(check(t, block)); !slices.Contains(got, tc.code) {
			t.Errorf("case %d %s: breaking change gives %v", i, tc.code, got)
		}
	}
}

func TestSeverity(t *testing.T) {
	t.Parallel()
	in := rules.Input{Episode: episode(t, kaptest.HomeDosing), At: sendAt, Medications: []rules.Medication{{RxNorm: "596"}}}
	in.Episode.Prescriptions[0].Refills = 9
	fs := check(t, in)
	want := []rules.Finding{
		{Code: rules.CodeRefills, Severity: rules.Block, Expression: "prescriptions[0].refills", Message: "a Schedule III prescription allows at most 5 refills", RuleSet: "2026-01-01"},
		{Code: "interaction-benzodiazepine", Severity: rules.Warn, Message: "a benzodiazepine from a partner record may blunt the effect of ketamine", RuleSet: "2026-01-01"},
	}
	if !slices.Equal(fs, want) {
		t.Errorf("findings\n got %+v\nwant %+v", fs, want)
	}
	if !rules.Blocked(fs) || rules.Blocked(fs[1:]) {
		t.Errorf("Blocked: a warning alone must not block, a block must")
	}
}

func TestEveryCodeTested(t *testing.T) {
	t.Parallel()
	tested := map[string]bool{}
	for _, tc := range ruleCases() {
		tested[tc.code] = true
	}
	all := []string{rules.CodePrescriberDEA, rules.CodeLicenseState, rules.CodeLicenseExpired, rules.CodeMedicalEvaluation,
		rules.CodeTelehealthEnded, rules.CodeConsentTreatment, rules.CodeConsentTelehealth, rules.CodeConsentHomeDosing,
		rules.CodePatientAge, rules.CodeRefills, rules.CodeFillWindow, rules.CodeSupply, rules.CodeDuplicateActive, rules.CodePharmacyShips}
	for _, c := range all {
		if !tested[c] {
			t.Errorf("rule %s has no test", c)
		}
	}
}

func TestFor(t *testing.T) {
	t.Parallel()
	if _, err := rules.For(time.Date(2025, 12, 31, 0, 0, 0, 0, time.UTC)); err == nil {
		t.Error("For before the first rule set: no error")
	}
	s, err := rules.For(time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC))
	if err != nil || s.Version != "2026-01-01" || s.TelehealthPrescribingUntil != "2026-12-31" {
		t.Errorf("For 2027-01-01 = %+v, %v", s, err)
	}
}

func TestParseRefusesBadSets(t *testing.T) {
	t.Parallel()
	for _, body := range []string{
		`{`,
		`{"effectiveFrom":"2026-13-01","telehealthPrescribingUntil":"2026-12-31","unitsPerDoseSig":"(\\d)","fillWindowMonths":6,"defaultDosingIntervalDays":3}`,
		`{"effectiveFrom":"2026-01-01","telehealthPrescribingUntil":"","unitsPerDoseSig":"(\\d)","fillWindowMonths":6,"defaultDosingIntervalDays":3}`,
		`{"effectiveFrom":"2026-01-01","telehealthPrescribingUntil":"2026-12-31","unitsPerDoseSig":"\\d","fillWindowMonths":6,"defaultDosingIntervalDays":3}`,
		`{"effectiveFrom":"2026-01-01","telehealthPrescribingUntil":"2026-12-31","unitsPerDoseSig":"(\\d)","fillWindowMonths":0,"defaultDosingIntervalDays":3}`,
	} {
		if _, err := rules.Parse([]byte(body)); err == nil {
			t.Errorf("Parse(%s): no error", body)
		}
	}
}

// BenchmarkCheck measures one prescription's rule check, rule set loaded.
func BenchmarkCheck(b *testing.B) {
	in := rules.Input{Episode: episode(b, kaptest.HomeDosing), At: sendAt}
	set, err := rules.For(sendAt)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		set.Check(in)
	}
}

// BenchmarkFor measures loading the rule set in force (embedded JSON).
func BenchmarkFor(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := rules.For(sendAt); err != nil {
			b.Fatal(err)
		}
	}
}
