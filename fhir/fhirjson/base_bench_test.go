package fhirjson_test

import (
	"encoding/json"
	"testing"
)

// BenchmarkEncodingJSONMedicationRequest is the baseline: samply's own
// encoding, which Marshal rewrites.
func BenchmarkEncodingJSONMedicationRequest(b *testing.B) {
	mr := medicationRequest()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := json.Marshal(mr); err != nil {
			b.Fatal(err)
		}
	}
}
