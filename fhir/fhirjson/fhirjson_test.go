package fhirjson_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/kapgw/kapgw/fhir/fhirjson"
)

func mustMarshal(tb testing.TB, v any, opts ...fhirjson.Option) []byte {
	tb.Helper()
	b, err := fhirjson.MarshalWith(v, opts...)
	if err != nil {
		tb.Fatalf("marshal %T: %v", v, err)
	}
	return b
}

// emitted lists one realistic value of every resource type the gateway
// emits and the required coded elements each must carry.
func emitted(tb testing.TB) []struct {
	name     string
	value    any
	required []string
} {
	tb.Helper()
	return []struct {
		name     string
		value    any
		required []string
	}{
		{"Patient", patient(), nil},
		{"Practitioner", practitioner(), nil},
		{"PractitionerRole", practitionerRole(), nil},
		{"Organization", organization(), nil},
		{"CareTeam", careTeam(), nil},
		{"Condition", condition(), nil},
		{"EpisodeOfCare", episodeOfCare(), []string{"status"}},
		{"CarePlan", carePlan(), []string{"status", "intent"}},
		{"Encounter", encounter(), []string{"status"}},
		{"Medication", medication(), nil},
		{"MedicationRequest", medicationRequest(), []string{"status", "intent"}},
		{"MedicationAdministration", medicationAdministration(), []string{"status"}},
		{"MedicationDispense", medicationDispense(), []string{"status"}},
		{"Observation", observation(), []string{"status"}},
		{"AdverseEvent", adverseEvent(), []string{"actuality"}},
		{"Provenance", provenance(), nil},
		{"Task", task(), []string{"status", "intent"}},
		{"AuditEvent", auditEvent(), nil},
		{"Bundle", bundle(tb), []string{"type"}},
		{"OperationOutcome", operationOutcome(), nil},
		{"CapabilityStatement", capabilityStatement(), []string{"status", "kind", "fhirVersion"}},
		{"CodeSystem", codeSystem(), []string{"status", "content"}},
	}
}

func TestMarshalEmitsCleanJSON(t *testing.T) {
	t.Parallel()
	for _, tc := range emitted(t) {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			out := mustMarshal(t, tc.value)
			assertClean(t, out)
			assertPrefix(t, out, `{"resourceType":"`+tc.name+`"`)
			assertMembers(t, decodeObject(t, out), tc.required...)
			assertOneMedicationForm(t, out)
		})
	}
}

// assertClean fails when the JSON holds an empty object, array or string,
// or a null, anywhere. It decodes generically (independently of the
// rewriter) and walks the result.
func assertClean(tb testing.TB, data []byte) {
	tb.Helper()
	var v any
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		tb.Fatalf("output is not JSON: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		tb.Fatalf("output has trailing data")
	}
	for _, p := range empties(v, "$") {
		tb.Errorf("empty value at %s", p)
	}
}

func empties(v any, path string) []string {
	var out []string
	switch x := v.(type) {
	case nil:
		return []string{path + " (null)"}
	case string:
		if x == "" {
			return []string{path + ` ("")`}
		}
	case []any:
		if len(x) == 0 {
			return []string{path + " ([])"}
		}
		for i, e := range x {
			out = append(out, empties(e, fmt.Sprintf("%s[%d]", path, i))...)
		}
	case map[string]any:
		if len(x) == 0 {
			return []string{path + " ({})"}
		}
		for k, e := range x {
			out = append(out, empties(e, path+"."+k)...)
		}
	}
	return out
}

func assertPrefix(tb testing.TB, data []byte, prefix string) {
	tb.Helper()
	if !bytes.HasPrefix(data, []byte(prefix)) {
		tb.Errorf("output starts %.60s, want %s", data, prefix)
	}
}

func decodeObject(tb testing.TB, data []byte) map[string]json.RawMessage {
	tb.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(data, &m); err != nil {
		tb.Fatalf("decode object: %v", err)
	}
	return m
}

func assertMembers(tb testing.TB, m map[string]json.RawMessage, names ...string) {
	tb.Helper()
	for _, n := range names {
		if _, ok := m[n]; !ok {
			tb.Errorf("element %s is missing", n)
		}
	}
}

// assertOneMedicationForm fails when the top-level resource carries more
// than one medication[x] form.
func assertOneMedicationForm(tb testing.TB, data []byte) {
	tb.Helper()
	n := 0
	for k := range decodeObject(tb, data) {
		if strings.HasPrefix(k, "medication") {
			n++
		}
	}
	if n > 1 {
		tb.Errorf("%d medication[x] forms, want at most 1", n)
	}
}
