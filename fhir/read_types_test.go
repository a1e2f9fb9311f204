package fhir

import (
	"slices"
	"testing"

	"github.com/kapgw/kapgw/internal/search"
)

// TestReadableTypesMatchSearchableTypes keeps the types served by id and
// the types searchable (and advertised in the CapabilityStatement) the same
// set, so a type added to one cannot be missing from the other.
func TestReadableTypesMatchSearchableTypes(t *testing.T) {
	t.Parallel()
	var readable []string
	for typ := range resourceTypes {
		readable = append(readable, typ)
	}
	slices.Sort(readable)
	if searchable := search.New().Types(); !slices.Equal(readable, searchable) {
		t.Errorf("readable types %v differ from searchable types %v", readable, searchable)
	}
}
