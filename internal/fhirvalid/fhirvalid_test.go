package fhirvalid_test

import (
	"strings"
	"testing"

	"github.com/kapgw/kapgw/internal/fhirvalid"
)

const validEncounter = `{"resourceType":"Encounter","id":"e1","status":"finished",
 "class":{"system":"http://terminology.hl7.org/CodeSystem/v3-ActCode","code":"AMB"},
 "subject":{"reference":"Patient/p1"},
 "period":{"start":"2024-03-05T10:00:00-05:00","end":"2024-03-05T12:00:00-05:00"}}`

// bloodPressure is a valid R4 core bp-profile Observation; its two
// components are named by the placeholders SYS and DIA.
const bloodPressure = `{"resourceType":"Observation","id":"bp1","meta":{"profile":["http://hl7.org/fhir/StructureDefinition/bp"]},
 "status":"final","category":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/observation-category","code":"vital-signs"}]}],
 "code":{"coding":[{"system":"http://loinc.org","code":"85354-9"}]},"subject":{"reference":"Patient/p1"},
 "effectiveDateTime":"2024-03-05T10:00:00-05:00",
 "component":[
  {"code":{"coding":[{"system":"http://loinc.org","code":"SYS"}]},"valueQuantity":{"value":120,"unit":"mmHg","system":"http://unitsofmeasure.org","code":"mm[Hg]"}},
  {"code":{"coding":[{"system":"http://loinc.org","code":"DIA"}]},"valueQuantity":{"value":80,"unit":"mmHg","system":"http://unitsofmeasure.org","code":"mm[Hg]"}}]}`

// TestBloodPressureProfile proves the check that stands in for Medplum's
// unverifiable bp slices accepts a correct panel and refuses broken ones.
func TestBloodPressureProfile(t *testing.T) {
	t.Parallel()
	v := fhirvalid.New(t)
	good := strings.NewReplacer("SYS", "8480-6", "DIA", "8462-4").Replace(bloodPressure)
	v.Check(t, []byte(good))
	for name, bad := range map[string]string{
		"no diastolic": strings.NewReplacer("SYS", "8480-6", "DIA", "8867-4").Replace(bloodPressure),
		"two systolic": strings.NewReplacer("SYS", "8480-6", "DIA", "8480-6").Replace(bloodPressure),
		"wrong unit":   strings.Replace(good, `"code":"mm[Hg]"}}]}`, `"code":"kPa"}}]}`, 1),
	} {
		issues, err := v.Issues([]byte(bad))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		assertFailingAt(t, issues, "Observation.component")
	}
}

func TestCheckAcceptsValidResources(t *testing.T) {
	t.Parallel()
	v := fhirvalid.New(t)
	v.Check(t,
		[]byte(validEncounter),
		[]byte(`{"resourceType":"Patient","id":"p1","gender":"female","birthDate":"1980-01-01"}`),
		[]byte(`{"resourceType":"MedicationRequest","id":"mr1","contained":[{"resourceType":"Medication","id":"med","code":{"text":"ketamine"}}],
		  "status":"active","intent":"order","medicationReference":{"reference":"#med"},"subject":{"reference":"Patient/p1"}}`),
	)
}

// TestIssuesReportsInvalidResources proves the check can fail: each resource
// has one defect, and the validator must report an error at its path.
func TestIssuesReportsInvalidResources(t *testing.T) {
	t.Parallel()
	v := fhirvalid.New(t)
	tests := []struct {
		name     string
		resource string
		path     string
	}{
		{"missing status", strings.Replace(validEncounter, `"status":"finished",`, "", 1), "Encounter.status"},
		{"bad status code", strings.Replace(validEncounter, `"finished"`, `"done"`, 1), "Encounter.status"},
		{"empty string", strings.Replace(validEncounter, `"code":"AMB"`, `"code":"AMB","display":""`, 1), "Encounter.class.display"},
		{"empty array", strings.Replace(validEncounter, `"status":`, `"type":[],"status":`, 1), "Encounter.type"},
		{"null", strings.Replace(validEncounter, `"status":`, `"language":null,"status":`, 1), "Encounter.language"},
		{"date-time without zone", strings.Replace(validEncounter, `12:00:00-05:00`, `12:00:00`, 1), "Encounter.period.end"},
		{"unknown element", strings.Replace(validEncounter, `"status":`, `"mood":"calm","status":`, 1), "mood"},
		{"reference syntax", strings.Replace(validEncounter, `Patient/p1`, `patient p1`, 1), "Encounter.subject.reference"},
		{"unreferenced contained", strings.Replace(validEncounter, `"status":`, `"contained":[{"resourceType":"Patient","id":"x"}],"status":`, 1), "Encounter.contained[0]"},
		{"bundled resource", `{"resourceType":"Bundle","type":"collection","entry":[{"fullUrl":"https://x.example/Encounter/e1","resource":` + strings.Replace(validEncounter, `"status":"finished",`, "", 1) + `}]}`, "Bundle.entry[0].resource.status"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			issues, err := v.Issues([]byte(tc.resource))
			if err != nil {
				t.Fatalf("Issues: %v", err)
			}
			assertFailingAt(t, issues, tc.path)
		})
	}
}

func assertFailingAt(tb testing.TB, issues []fhirvalid.Issue, path string) {
	tb.Helper()
	for _, i := range issues {
		if i.Failing() && strings.Contains(i.Path, path) {
			return
		}
	}
	tb.Errorf("no error at %s; got %v", path, issues)
}

func TestIssuesKeepsResourceIndex(t *testing.T) {
	t.Parallel()
	v := fhirvalid.New(t)
	issues, err := v.Issues([]byte(validEncounter), []byte(`{"resourceType":"Observation","id":"o1"}`), []byte(`not json`))
	if err != nil {
		t.Fatalf("Issues: %v", err)
	}
	indexes := map[int]bool{}
	for _, i := range issues {
		indexes[i.Index] = indexes[i.Index] || i.Failing()
	}
	if indexes[0] || !indexes[1] || !indexes[2] {
		t.Errorf("failing resources by index = %v, want 1 and 2 only; issues %v", indexes, issues)
	}
}
