package fhirjson_test

import (
	"strings"
	"testing"
	"time"

	r4 "github.com/samply/golang-fhir-models/fhir-models/fhir"

	"github.com/kapgw/kapgw/fhir/fhirjson"
)

// without removes the first occurrence of member (with its comma) from data.
func without(tb testing.TB, data []byte, member string) []byte {
	tb.Helper()
	s := string(data)
	if !strings.Contains(s, member) {
		tb.Fatalf("fixture lacks %s", member)
	}
	return []byte(strings.Replace(s, member, "", 1))
}

func TestUnmarshalRefusesMissingRequiredElements(t *testing.T) {
	t.Parallel()
	bundleBody := mustMarshal(t, bundle(t))
	tests := []struct {
		name   string
		data   []byte
		target any
		want   string
	}{
		{"encounter status", without(t, mustMarshal(t, encounter()), `"status":"finished",`), &r4.Encounter{}, "Encounter.status"},
		{"observation status", without(t, mustMarshal(t, observation()), `"status":"final",`), &r4.Observation{}, "Observation.status"},
		{"medication request intent", without(t, mustMarshal(t, medicationRequest()), `"intent":"order",`), &r4.MedicationRequest{}, "MedicationRequest.intent"},
		{"medication request medication", without(t, mustMarshal(t, medicationRequestWithContained()), `"medicationReference":{"reference":"#med"},`), &r4.MedicationRequest{}, "MedicationRequest.medication[x]"},
		{"dispense status", without(t, mustMarshal(t, medicationDispense()), `"status":"completed",`), &r4.MedicationDispense{}, "MedicationDispense.status"},
		{"administration status", without(t, mustMarshal(t, medicationAdministration()), `"status":"completed",`), &r4.MedicationAdministration{}, "MedicationAdministration.status"},
		{"care plan intent", without(t, mustMarshal(t, carePlan()), `"intent":"plan",`), &r4.CarePlan{}, "CarePlan.intent"},
		{"care plan activity status", without(t, mustMarshal(t, carePlan()), `"status":"scheduled",`), &r4.CarePlan{}, "CarePlan.activity.detail.status"},
		{"episode status", without(t, mustMarshal(t, episodeOfCare()), `"status":"active",`), &r4.EpisodeOfCare{}, "EpisodeOfCare.status"},
		{"adverse event actuality", without(t, mustMarshal(t, adverseEvent()), `"actuality":"actual",`), &r4.AdverseEvent{}, "AdverseEvent.actuality"},
		{"task status", without(t, mustMarshal(t, task()), `"status":"requested",`), &r4.Task{}, "Task.status"},
		{"bundle type", without(t, bundleBody, `"type":"searchset",`), &r4.Bundle{}, "Bundle.type"},
		{"bundled encounter status", without(t, bundleBody, `"status":"finished",`), &r4.Bundle{}, "Encounter.status"},
		{"null status", []byte(strings.Replace(string(mustMarshal(t, encounter())), `"finished"`, "null", 1)), &r4.Encounter{}, "Encounter.status"},
		{"issue severity", without(t, mustMarshal(t, operationOutcome()), `"severity":"error",`), &r4.OperationOutcome{}, "OperationOutcome.issue.severity"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			assertRequired(t, fhirjson.Unmarshal(tc.data, tc.target), tc.want)
		})
	}
}

func TestUnmarshalDecodesValidResources(t *testing.T) {
	t.Parallel()
	var enc r4.Encounter
	if err := fhirjson.Unmarshal(mustMarshal(t, encounter()), &enc); err != nil {
		t.Fatalf("Unmarshal: %v", err)
	}
	if enc.Status != r4.EncounterStatusFinished || enc.Length == nil || enc.Length.Value.String() != "120" {
		t.Errorf("decoded status %v length %v", enc.Status, enc.Length)
	}
}

func TestUnmarshalRefusesOtherResourceTypes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		data string
		want string
	}{
		{"other type", `{"resourceType":"Patient","id":"p1"}`, "resourceType is Patient, want Encounter"},
		{"no type", `{"id":"p1"}`, "resourceType is missing"},
		{"not json", `{"resourceType":`, "invalid JSON"},
		{"array", `[{"resourceType":"Encounter"}]`, "not a JSON object"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			assertErrorContains(t, fhirjson.Unmarshal([]byte(tc.data), &r4.Encounter{}), tc.want)
		})
	}
}

// TestRawKeepsUnknownElements shows why callers that forward data keep a Raw:
// the typed view loses the partner's extension element, the Raw does not.
func TestRawKeepsUnknownElements(t *testing.T) {
	t.Parallel()
	data := []byte(`{"resourceType":"Encounter","id":"e9","status":"finished","class":{"code":"AMB"},"partnerNote":{"x":1}}`)
	raw, err := fhirjson.Parse(data)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if raw.Type != "Encounter" || raw.ID != "e9" || !strings.Contains(string(raw.JSON), `"partnerNote":{"x":1}`) {
		t.Errorf("raw = %s %s %s", raw.Type, raw.ID, raw.JSON)
	}
	var enc r4.Encounter
	if err := raw.Decode(&enc); err != nil {
		t.Fatalf("Decode: %v", err)
	}
	if strings.Contains(string(rawJSON(t, enc)), "partnerNote") {
		t.Errorf("samply kept the unknown element; the Raw wrapper is no longer needed")
	}
}

func TestResourceTypeAndID(t *testing.T) {
	t.Parallel()
	body := mustMarshal(t, medicationRequest())
	typ, err := fhirjson.ResourceType(body)
	if err != nil || typ != "MedicationRequest" {
		t.Errorf("ResourceType = %q, %v", typ, err)
	}
	id, err := fhirjson.ID(body)
	if err != nil || id != "mr1" {
		t.Errorf("ID = %q, %v", id, err)
	}
	id, err = fhirjson.ID(mustMarshal(t, capabilityStatement()))
	if err != nil || id != "" {
		t.Errorf("ID without id = %q, %v", id, err)
	}
	if _, err := fhirjson.ID([]byte(`{"id":7}`)); err == nil {
		t.Errorf("ID accepted a numeric id")
	}
}

func TestWithMeta(t *testing.T) {
	t.Parallel()
	at := time.Date(2024, 3, 5, 17, 4, 5, 123456789, time.FixedZone("EST", -5*3600))
	profiled := encounter()
	profiled.Meta = &r4.Meta{VersionId: ptr("1"), Profile: []string{"http://hl7.org/fhir/us/core/StructureDefinition/us-core-encounter"}}
	tests := []struct {
		name string
		body []byte
		want string
	}{
		{"no meta goes after id", mustMarshal(t, encounter()), `{"resourceType":"Encounter","id":"e1","meta":{"versionId":"7","lastUpdated":"2024-03-05T22:04:05.123Z"},"status"`},
		{"no id goes after resourceType", mustMarshal(t, capabilityStatement()), `{"resourceType":"CapabilityStatement","meta":{"versionId":"7","lastUpdated":"2024-03-05T22:04:05.123Z"},"status"`},
		{"existing meta keeps profile", mustMarshal(t, profiled), `"meta":{"versionId":"7","profile":["http://hl7.org/fhir/us/core/StructureDefinition/us-core-encounter"],"lastUpdated":"2024-03-05T22:04:05.123Z"}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			out, err := fhirjson.WithMeta(tc.body, "7", at)
			if err != nil {
				t.Fatalf("WithMeta: %v", err)
			}
			assertContains(t, string(out), tc.want)
			assertClean(t, out)
		})
	}
}

func TestWithMetaRefusesBadInput(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, body, version string
	}{
		{"empty version", `{"resourceType":"Patient","id":"p1"}`, ""},
		{"not a resource", `{"id":"p1"}`, "1"},
		{"meta not an object", `{"resourceType":"Patient","meta":"x"}`, "1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := fhirjson.WithMeta([]byte(tc.body), tc.version, time.Now())
			assertErrorContains(t, err, "set meta")
		})
	}
}

func BenchmarkMarshalMedicationRequest(b *testing.B) {
	mr := medicationRequest()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := fhirjson.Marshal(mr); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkMarshalTask(b *testing.B) {
	tk := task()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := fhirjson.Marshal(tk); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkMarshalBundle(b *testing.B) {
	bu := bundle(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := fhirjson.Marshal(bu); err != nil {
			b.Fatal(err)
		}
	}
}
