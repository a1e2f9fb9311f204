package audit

import (
	"bytes"
	"sort"
	"strings"
	"testing"
	"time"

	r4 "github.com/samply/golang-fhir-models/fhir-models/fhir"

	"github.com/kapgw/kapgw/fhir/fhirjson"
)

// modelBuild is the AuditEvent as the samply model encodes it through
// fhirjson: the reference the template in build must match byte for byte.
func modelBuild(t *testing.T, id, patient string, a Access) []byte {
	t.Helper()
	ptr := func(s string) *string { return &s }
	act, out := r4.AuditEventActionE, r4.AuditEventOutcome0
	if action(a.Interaction) == "R" {
		act = r4.AuditEventActionR
	}
	switch outcomeCode(a.Status) {
	case "4":
		out = r4.AuditEventOutcome4
	case "8":
		out = r4.AuditEventOutcome8
	}
	ev := r4.AuditEvent{
		Id:       &id,
		Type:     r4.Coding{System: ptr(systemEventType), Code: ptr("rest"), Display: ptr("RESTful Operation")},
		Subtype:  []r4.Coding{{System: ptr(systemInteraction), Code: ptr(a.Interaction)}},
		Action:   &act,
		Recorded: a.At.UTC().Format(time.RFC3339Nano),
		Outcome:  &out,
		Agent: []r4.AuditEventAgent{{
			Who:       &r4.Reference{Identifier: &r4.Identifier{System: ptr(systemClientID), Value: ptr(a.ClientID)}},
			Requestor: true,
		}},
		Source: r4.AuditEventSource{
			Observer: r4.Reference{Display: ptr("kapgw")},
			Type:     []r4.Coding{{System: ptr(systemSourceType), Code: ptr("4"), Display: ptr("Application Server")}},
		},
	}
	if patient != "" {
		ev.Entity = append(ev.Entity, r4.AuditEventEntity{What: &r4.Reference{Reference: ptr("Patient/" + patient)},
			Type: &r4.Coding{System: ptr(systemEntityType), Code: ptr("1")}, Role: &r4.Coding{System: ptr(systemObjectRole), Code: ptr("1")}})
	}
	for _, e := range a.Entries {
		if e.Ref == "Patient/"+patient || (e.Patient != "" && e.Patient != patient) {
			continue
		}
		ev.Entity = append(ev.Entity, r4.AuditEventEntity{What: &r4.Reference{Reference: ptr(e.Ref)},
			Type: &r4.Coding{System: ptr(systemEntityType), Code: ptr("2")}, Role: &r4.Coding{System: ptr(systemObjectRole), Code: ptr("4")}})
	}
	b, err := fhirjson.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestBuildMatchesModel(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 3, 1, 12, 0, 0, 7_000_000, time.FixedZone("x", 3600))
	entries := []Entry{{Ref: "Patient/p1", Patient: "p1"}, {Ref: "Observation/o1", Patient: "p1"}, {Ref: "Practitioner/d1"}, {Ref: "Observation/o2", Patient: "p2"}}
	for _, a := range []Access{
		{ClientID: "ehr-a", Interaction: "read", Status: 200, At: at},
		{ClientID: "ehr-a", Interaction: "search-type", Status: 200, Entries: entries, At: at},
		{ClientID: "ehr.b_1", Interaction: "operation", Status: 404, At: at.Truncate(time.Second)},
		{ClientID: "odd \"client\"\n\u00e9", Interaction: "history-type", Status: 503, Entries: []Entry{{Ref: "Observation/\\x"}}, At: at},
	} {
		for _, p := range []string{"", "p1", "p2"} {
			got, want := build("ID1", p, a), modelBuild(t, "ID1", p, a)
			if !bytes.Equal(got, want) {
				t.Errorf("patient %q, access %+v:\n got %s\nwant %s", p, a, got, want)
			}
		}
	}
}

func TestIDsSortByTimeAndDiffer(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	var ids []string
	seen := map[string]bool{}
	for i := range 200 {
		id := newID(t0.Add(time.Duration(i) * time.Millisecond))
		if len(id) != 26 || strings.Trim(id, crockford) != "" || seen[id] {
			t.Fatalf("id %q: bad length, alphabet or a repeat", id)
		}
		seen[id] = true
		ids = append(ids, id)
	}
	if !sort.StringsAreSorted(ids) {
		t.Error("ids made a millisecond apart do not sort by time")
	}
	if a, b := newID(t0), newID(t0); a[:10] != b[:10] || a == b {
		t.Errorf("same-millisecond ids %s %s: want a shared time prefix and different randomness", a, b)
	}
}
