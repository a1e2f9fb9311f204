package mappers_test

import (
	"regexp"
	"strings"
	"testing"

	"github.com/kapgw/kapgw/mappers"
)

var fhirID = regexp.MustCompile(`^[A-Za-z0-9\-.]{1,64}$`)

func TestIDFormatWithLongKeys(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("A.b-9", 13)[:64]
	for _, typ := range []string{"Patient", "Organization", "Encounter", "MedicationAdministration", "Provenance", "Unknown"} {
		id := mappers.ID(typ, long, long, long, long)
		if !fhirID.MatchString(id) {
			t.Fatalf("ID(%s, 4 x 64-char keys) = %q: not a FHIR id", typ, id)
		}
	}
}

// TestIDsOfExamples checks every id the examples map to: valid, unique
// across types and episodes, except Shared ones, which must be equal for
// the same clinic id.
func TestIDsOfExamples(t *testing.T) {
	t.Parallel()
	owner := map[string]string{} // id -> example that emitted it
	seen := map[string]mappers.Resource{}
	for _, name := range examples {
		inEpisode := map[string]bool{}
		for _, r := range mapExample(t, name) {
			if !fhirID.MatchString(r.ID) {
				t.Fatalf("%s: %s id %q is not a FHIR id", name, r.Type, r.ID)
			}
			if inEpisode[r.ID] {
				t.Fatalf("%s: id %s emitted twice", name, r.ID)
			}
			inEpisode[r.ID] = true
			prev, ok := seen[r.ID]
			if ok && (prev.Type != r.Type || r.Scope != mappers.Shared) {
				t.Fatalf("%s: %s %s collides with %s from %s", name, r.Type, r.ID, prev.Type, owner[r.ID])
			}
			seen[r.ID], owner[r.ID] = r, name
		}
	}
}

// TestSharedIDsStable: both shared examples name org-med-1 and phm-1, and
// synthetic-minimal reuses the home-dosing clinicians.
func TestSharedIDsStable(t *testing.T) {
	t.Parallel()
	ids := func(name string) map[string]bool {
		out := map[string]bool{}
		for _, r := range mapExample(t, name) {
			if r.Scope == mappers.Shared {
				out[r.Type+"/"+r.ID] = true
			}
		}
		return out
	}
	home, four, minimal := ids("example-home-dosing"), ids("example-four-dosings"), ids("synthetic-minimal")
	for _, want := range []string{
		"Organization/" + mappers.ID("Organization", "org", "org-med-1"),
		"Organization/" + mappers.ID("Organization", "pharmacy", "phm-1"),
	} {
		if !home[want] || !four[want] {
			t.Fatalf("%s missing from one of the examples", want)
		}
	}
	for _, want := range []string{
		"Practitioner/" + mappers.ID("Practitioner", "prs-004"),
		"Practitioner/" + mappers.ID("Practitioner", "thr-016"),
		"PractitionerRole/" + mappers.ID("PractitionerRole", "prescriber", "prs-004", "org-med-1"),
	} {
		if !home[want] || !minimal[want] {
			t.Fatalf("%s differs between episodes naming the same clinician", want)
		}
	}
}

func TestIDDistinguishesKeys(t *testing.T) {
	t.Parallel()
	pairs := [][2]string{
		{mappers.ID("Encounter", "ep-1", "s1"), mappers.ID("Encounter", "ep-2", "s1")},
		{mappers.ID("Encounter", "ep-1", "s1"), mappers.ID("Observation", "ep-1", "s1")},
		{mappers.ID("Encounter", "a", "bc"), mappers.ID("Encounter", "ab", "c")},
		{mappers.ID("Organization", "org", "x"), mappers.ID("Organization", "pharmacy", "x")},
	}
	for _, p := range pairs {
		if p[0] == p[1] {
			t.Fatalf("distinct keys map to the same id %s", p[0])
		}
	}
}
