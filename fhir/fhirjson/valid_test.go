package fhirjson_test

import (
	"testing"

	"github.com/kapgw/kapgw/internal/fhirvalid"
)

// TestMarshalOutputIsValidFHIR runs everything the fixtures emit through the
// independent validator.
func TestMarshalOutputIsValidFHIR(t *testing.T) {
	t.Parallel()
	v := fhirvalid.New(t)
	var all [][]byte
	for _, tc := range emitted(t) {
		all = append(all, mustMarshal(t, tc.value))
	}
	all = append(all, mustMarshal(t, medicationRequestWithContained(), containedOptions(t)...))
	v.Check(t, all...)
}
