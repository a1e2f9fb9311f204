package mappers_test

import (
	"encoding/json"
	"testing"

	"github.com/kapgw/kapgw/fhir/fhirjson"
	"github.com/kapgw/kapgw/mappers"
)

// decoded is what Retire tests look at in a retired resource.
type decoded struct {
	Status             string
	VerificationStatus *struct{ Coding []struct{ Code string } }
	ClinicalStatus     any
	Meta               struct {
		Tag     []struct{ System, Code string }
		Profile []string
	}
}

func decode(tb testing.TB, v any) decoded {
	tb.Helper()
	body, err := fhirjson.Marshal(v)
	if err != nil {
		tb.Fatalf("marshal: %v", err)
	}
	var d decoded
	if err := json.Unmarshal(body, &d); err != nil {
		tb.Fatalf("decode: %v", err)
	}
	return d
}

func TestRetireRemovedSessionAndMeasure(t *testing.T) {
	t.Parallel()
	ep, opts := loadEpisode(t, "example-home-dosing")
	prev, err := mappers.Map(ep, opts)
	if err != nil {
		t.Fatalf("map: %v", err)
	}
	// The next document drops the last integration session and its PHQ-9.
	ep.Sessions = ep.Sessions[:len(ep.Sessions)-1]
	ep.Measures = ep.Measures[:len(ep.Measures)-1]
	opts.DocumentDigest = "00ff"
	next, err := mappers.Map(ep, opts)
	if err != nil {
		t.Fatalf("map next: %v", err)
	}
	got := mappers.Retire(prev, next)
	if len(got) != 2 || got[0].Type != "Encounter" || got[1].Type != "Observation" {
		t.Fatalf("retired %v, want the Encounter and the Observation", typesOf(got))
	}
	for _, r := range got {
		d := decode(t, r.Value)
		if d.Status != "entered-in-error" {
			t.Fatalf("%s/%s status %q, want entered-in-error", r.Type, r.ID, d.Status)
		}
		if len(d.Meta.Tag) != 1 || d.Meta.Tag[0].Code != "nullified" {
			t.Fatalf("%s/%s tags %v, want nullified", r.Type, r.ID, d.Meta.Tag)
		}
	}
	// prev must be untouched: its Encounter is still finished.
	for _, r := range prev {
		if r.ID == got[0].ID && decode(t, r.Value).Status != "finished" {
			t.Fatalf("Retire changed prev's Encounter")
		}
	}
}

func TestRetireEveryEpisodeType(t *testing.T) {
	t.Parallel()
	prev := mapExample(t, "synthetic-mixed")
	got := mappers.Retire(prev, nil)
	wantCount := 0
	for _, r := range prev {
		if r.Scope == mappers.Episode && r.Type != "Provenance" {
			wantCount++
		}
	}
	if len(got) != wantCount {
		t.Fatalf("retired %d resources, want %d (every Episode-scoped one but Provenance)", len(got), wantCount)
	}
	for _, r := range got {
		d := decode(t, r.Value)
		switch r.Type {
		case "Condition":
			if d.ClinicalStatus != nil || d.VerificationStatus == nil || d.VerificationStatus.Coding[0].Code != "entered-in-error" {
				t.Fatalf("Condition/%s not entered-in-error as con-5 requires", r.ID)
			}
		case "AdverseEvent":
		default:
			if d.Status != "entered-in-error" {
				t.Fatalf("%s/%s status %q, want entered-in-error", r.Type, r.ID, d.Status)
			}
		}
		if len(d.Meta.Tag) != 1 || d.Meta.Tag[0].Code != "nullified" {
			t.Fatalf("%s/%s lacks the nullified tag", r.Type, r.ID)
		}
	}
}

func TestRetireNothingWhenUnchanged(t *testing.T) {
	t.Parallel()
	res := mapExample(t, "example-four-dosings")
	if got := mappers.Retire(res, res); len(got) != 0 {
		t.Fatalf("retired %v from an unchanged document", typesOf(got))
	}
}

func typesOf(res []mappers.Resource) []string {
	out := make([]string, len(res))
	for i, r := range res {
		out[i] = r.Type + "/" + r.ID
	}
	return out
}
