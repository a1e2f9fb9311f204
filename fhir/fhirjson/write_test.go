package fhirjson_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	r4 "github.com/samply/golang-fhir-models/fhir-models/fhir"

	"github.com/kapgw/kapgw/fhir/fhirjson"
)

func TestMarshalKeepsNumbersAsWritten(t *testing.T) {
	t.Parallel()
	out := string(mustMarshal(t, observation()))
	for _, want := range []string{`"value":1e-7`, `"value":100`, `"value":0.5`} {
		assertContains(t, out, want)
	}
}

func TestMarshalKeepsOneChoiceForm(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		value any
		want  string
		gone  []string
	}{
		{"medication reference", medicationAdministration(), `"medicationReference":{"reference":"Medication/m1"}`, []string{"medicationCodeableConcept", "effectiveDateTime"}},
		{"substitution allowed false", medicationRequest(), `"substitution":{"allowedBoolean":false}`, []string{"allowedCodeableConcept", "medicationReference"}},
		{"task input string", task(), `{"type":{"coding":[{"system":"https://kapgw.example/fhir/CodeSystem/kap","code":"pharmacy","display":"Pharmacy"}]},"valueString":"Compounding pharmacy"}`, []string{"valueContributor", "valueSampledData", "valueDecimal"}},
		{"task input integer", task(), `"code":"sessions","display":"Number of sessions"}]},"valueInteger":6}`, []string{"valueUnsignedInt"}},
		{"task input false", task(), `"code":"urgent","display":"Urgent"}]},"valueBoolean":false}`, []string{"valuePositiveInt"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			out := string(mustMarshal(t, tc.value))
			assertContains(t, out, tc.want)
			assertAbsent(t, out, tc.gone...)
		})
	}
}

func TestMarshalRefusesBrokenChoices(t *testing.T) {
	t.Parallel()
	both := medicationRequest()
	both.MedicationReference = r4.Reference{Reference: ptr("Medication/m1")}
	neither := medicationRequest()
	neither.MedicationCodeableConcept = r4.CodeableConcept{}
	ingredient := medication()
	ingredient.Ingredient[0].ItemCodeableConcept = r4.CodeableConcept{Text: ptr("")}
	tests := []struct {
		name  string
		value any
		want  string
	}{
		{"two forms", both, "MedicationRequest.medication[x] has more than one value"},
		{"no form", neither, "MedicationRequest.medication[x] is required"},
		{"nested", ingredient, "Medication.ingredient.item[x] is required"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := fhirjson.Marshal(tc.value)
			assertErrorContains(t, err, tc.want)
		})
	}
}

func medicationRequestWithContained() r4.MedicationRequest {
	mr := medicationRequest()
	mr.MedicationCodeableConcept = r4.CodeableConcept{}
	mr.MedicationReference = r4.Reference{Reference: ptr("#med")}
	mr.Text = narrative("ketamine order")
	return mr
}

func containedOptions(tb testing.TB) []fhirjson.Option {
	tb.Helper()
	med := medication()
	med.Id = ptr("med")
	return []fhirjson.Option{
		fhirjson.Contained(med),
		fhirjson.PrimitiveExtension("status", r4.Extension{Url: "https://kapgw.example/fhir/StructureDefinition/source-status", ValueCode: ptr("prescribed")}),
		fhirjson.PrimitiveExtension("dosageInstruction[0].timing.repeat.periodUnit", r4.Extension{Url: "https://kapgw.example/fhir/StructureDefinition/note", ValueString: ptr("per session")}),
	}
}

func TestMarshalWithContainedAndPrimitiveExtensions(t *testing.T) {
	t.Parallel()
	out := mustMarshal(t, medicationRequestWithContained(), containedOptions(t)...)
	assertClean(t, out)
	s := string(out)
	assertPrefix(t, out, `{"resourceType":"MedicationRequest","id":"mr1","text":{`)
	assertContains(t, s, `\u003c/div\u003e"},"contained":[{"resourceType":"Medication","id":"med",`)
	assertContains(t, s, `"_status":{"extension":[{"url":"https://kapgw.example/fhir/StructureDefinition/source-status","valueCode":"prescribed"}]}`)
	assertContains(t, s, `"periodUnit":"wk","_periodUnit":{"extension":[{`)
}

func TestMarshalWithRefusesBadAdditions(t *testing.T) {
	t.Parallel()
	noID := medication()
	noID.Id = nil
	tests := []struct {
		name string
		opt  fhirjson.Option
		want string
	}{
		{"contained without id", fhirjson.Contained(noID), "no id"},
		{"contained raw", fhirjson.Contained([]byte(`{"resourceType":"Medication","id":"m","contained":[{"resourceType":"Medication","id":"n"}]}`)), "cannot contain"},
		{"bad path", fhirjson.PrimitiveExtension("status..x", r4.Extension{Url: "https://x.example"}), "not an element path"},
		{"missing parent", fhirjson.PrimitiveExtension("dispenseRequest.validityPeriod.start", r4.Extension{Url: "https://x.example"}), "no element"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := fhirjson.MarshalWith(medicationRequest(), tc.opt)
			assertErrorContains(t, err, tc.want)
		})
	}
}

func assertContains(tb testing.TB, s, want string) {
	tb.Helper()
	if !strings.Contains(s, want) {
		tb.Errorf("output lacks %s:\n%s", want, s)
	}
}

func assertAbsent(tb testing.TB, s string, names ...string) {
	tb.Helper()
	for _, n := range names {
		if strings.Contains(s, `"`+n+`"`) {
			tb.Errorf("output has %s:\n%s", n, s)
		}
	}
}

func assertErrorContains(tb testing.TB, err error, want string) {
	tb.Helper()
	if err == nil || !strings.Contains(err.Error(), want) {
		tb.Errorf("error = %v, want one containing %q", err, want)
	}
}

func assertRequired(tb testing.TB, err error, want string) {
	tb.Helper()
	var req *fhirjson.RequiredError
	if !errors.As(err, &req) {
		tb.Fatalf("error = %v, want *RequiredError", err)
	}
	for _, p := range req.Paths {
		if p == want {
			return
		}
	}
	tb.Errorf("missing = %v, want %s", req.Paths, want)
}

// rawJSON re-encodes v with encoding/json only, for decode tests.
func rawJSON(tb testing.TB, v any) []byte {
	tb.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		tb.Fatalf("encode: %v", err)
	}
	return b
}

func TestMarshalRefusesEmptyValues(t *testing.T) {
	t.Parallel()
	var nothing *r4.Patient
	_, err := fhirjson.Marshal(nothing)
	assertErrorContains(t, err, "nothing to encode")
}
