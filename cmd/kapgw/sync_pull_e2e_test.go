package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/kapgw/kapgw/internal/fhirpeer"
	"github.com/kapgw/kapgw/internal/fhirvalid"
	"github.com/kapgw/kapgw/internal/kap/kaptest"
)

// TestSyncPullEndToEnd pushes an episode to the Medplum peer, records a
// partner's medication, allergy and blood pressure for that patient at the
// peer, enables the pull with kapgw sync pull enable, and finds them
// through our FHIR search and $everything (valid, with the partner as
// source), as the clinic and as the partner; a statement added later
// arrives at the next poll; kapgw sync pull status reports both.
func TestSyncPullEndToEnd(t *testing.T) {
	t.Parallel()
	peer := fhirpeer.Start(t)
	val := fhirvalid.New(t)
	g := startGateway(t, "--data-dir", t.TempDir(), "--client-cache", "0s", "--sync-allow-loopback=true")
	clinic := g.as(g.login(t, "clinic-platform", "clinic", clinicScopes, nil))
	partner := g.as(g.login(t, "ehr-1", "partner", []string{"system/*.rs"}, []string{"org-thr-12"}))
	g.syncCmd(t, "destination", "add", "--partner", "ehr-1", "--url", peer.Base, "--auth", "none",
		"--rate", "1000/s", "--sync-allow-loopback")
	id := "ep-700001"
	if resp, body := clinic.do(t, http.MethodPut, "/kap/v1/episodes/"+id, "application/json", kaptest.Example("home-dosing")); resp.StatusCode != http.StatusCreated {
		t.Fatalf("PUT: status %d, body %s", resp.StatusCode, body)
	}
	waitPeer(t, peer, keyedResources(t, clinic, id), "Okafor")
	remote := onlyID(t, peer, "Patient")
	ours := searchBundle(t, clinic, "/fhir/r4/Patient")[0].ID

	postPeer(t, peer.Base, fmt.Sprintf(`{"resourceType":"MedicationStatement","status":"active","subject":{"reference":"Patient/%s"},
		"medicationCodeableConcept":{"coding":[{"system":"http://www.nlm.nih.gov/research/umls/rxnorm","code":"36437","display":"sertraline"}]},
		"effectiveDateTime":"2026-01-05"}`, remote))
	postPeer(t, peer.Base, fmt.Sprintf(`{"resourceType":"AllergyIntolerance","patient":{"reference":"Patient/%s"},
		"clinicalStatus":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical","code":"active"}]},
		"code":{"text":"penicillin"}}`, remote))
	postPeer(t, peer.Base, fmt.Sprintf(`{"resourceType":"Observation","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"44249-1","display":"PHQ-9"}]},
		"subject":{"reference":"Patient/%s"},"effectiveDateTime":"2026-01-04","valueInteger":14}`, remote))

	if out := g.syncCmd(t, "pull", "enable", "--partner", "ehr-1", "--type", "MedicationStatement",
		"--type", "AllergyIntolerance,Observation", "--interval", "10s"); !strings.Contains(out, "enabled") {
		t.Fatalf("pull enable: %s", out)
	}
	meds := waitSearch(t, clinic, "/fhir/r4/MedicationStatement?patient=Patient/"+ours, 1)
	waitSearch(t, clinic, "/fhir/r4/AllergyIntolerance?patient=Patient/"+ours, 1)
	if got := searchBundle(t, partner, "/fhir/r4/MedicationStatement?patient=Patient/"+ours); len(got) != 1 {
		t.Fatalf("the partner sees %d statements, want 1", len(got))
	}
	var pulled [][]byte
	provenance := 0
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(250 * time.Millisecond) {
		pulled, provenance = nil, 0
		for _, e := range searchBundle(t, clinic, "/fhir/r4/Patient/"+ours+"/$everything?_count=500") {
			if !bytes.Contains(e.Raw, []byte(`"source":"https://kapgw.example/fhir/partner/ehr-1"`)) {
				continue
			}
			pulled = append(pulled, e.Raw)
			if e.Type == "Provenance" {
				provenance++
			}
		}
		if len(pulled)-provenance == 3 && provenance > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("$everything holds %d pulled resources and %d Provenance, want 3 and some", len(pulled)-provenance, provenance)
		}
	}
	val.Check(t, pulled...)
	if !bytes.Contains(meds[0].Raw, []byte(`"value":"`)) || !bytes.Contains(meds[0].Raw, []byte("/sid/external/ehr-1")) {
		t.Errorf("no identifier carrying the partner's id: %s", meds[0].Raw)
	}

	// The job recurs: a statement recorded now arrives at the next poll.
	postPeer(t, peer.Base, fmt.Sprintf(`{"resourceType":"MedicationStatement","status":"active","subject":{"reference":"Patient/%s"},
		"medicationCodeableConcept":{"text":"phenelzine"},"effectiveDateTime":"2026-01-06"}`, remote))
	waitSearch(t, clinic, "/fhir/r4/MedicationStatement?patient=Patient/"+ours, 2)
	status := g.syncCmd(t, "pull", "status")
	if !strings.Contains(status, "ehr-1") || !strings.Contains(rowOf(status, "MedicationStatement"), " 2 ") {
		t.Fatalf("pull status:\n%s", status)
	}
	// Every request is in the exchange log, inbound, in the job's trace.
	traced := 0
	for _, line := range strings.Split(strings.TrimSpace(runOut(t, "exchanges", "--data-dir", g.flags[1], "--partner", "ehr-1",
		"--limit", "1000", "--json")), "\n") {
		var r struct{ Kind, Direction, Operation, Status, TraceID string }
		if json.Unmarshal([]byte(line), &r) == nil && r.Kind == "pull" && r.Direction == "in" &&
			r.Operation == "GET MedicationStatement search" && r.Status == "ok" && len(r.TraceID) == 32 {
			traced++
		}
	}
	if traced < 2 {
		t.Errorf("%d traced MedicationStatement pulls in the exchange log, want one per poll", traced)
	}
	if out := g.syncCmd(t, "pull", "disable", "--partner", "ehr-1"); !strings.Contains(out, "disabled") {
		t.Fatalf("pull disable: %s", out)
	}
}

// entry is one resource of a search answer.
type entry struct {
	Type, ID string
	Raw      []byte
}

// searchBundle GETs a search and returns its resources.
func searchBundle(t *testing.T, g *gateway, path string) []entry {
	t.Helper()
	resp, body := g.do(t, http.MethodGet, path, "", nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: status %d, %s", path, resp.StatusCode, body)
	}
	var b struct {
		Entry []struct{ Resource json.RawMessage }
	}
	if err := json.Unmarshal(body, &b); err != nil {
		t.Fatal(err)
	}
	var out []entry
	for _, e := range b.Entry {
		var r struct{ ResourceType, ID string }
		if err := json.Unmarshal(e.Resource, &r); err != nil {
			t.Fatal(err)
		}
		out = append(out, entry{Type: r.ResourceType, ID: r.ID, Raw: e.Resource})
	}
	return out
}

// waitSearch polls a search until it finds n resources.
func waitSearch(t *testing.T, g *gateway, path string, n int) []entry {
	t.Helper()
	deadline := time.Now().Add(45 * time.Second)
	for {
		got := searchBundle(t, g, path)
		if len(got) == n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s: %d resources, want %d within 45s", path, len(got), n)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// postPeer creates a resource at the peer.
func postPeer(t *testing.T, base, body string) {
	t.Helper()
	var r struct{ ResourceType string }
	if err := json.Unmarshal([]byte(body), &r); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post(base+"/"+r.ResourceType, "application/fhir+json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("create %s at the peer: status %d", r.ResourceType, resp.StatusCode)
	}
}

// onlyID returns the id of the peer's only resource of typ.
func onlyID(t *testing.T, peer *fhirpeer.Peer, typ string) string {
	t.Helper()
	all, err := peer.All(context.Background(), typ)
	if err != nil || len(all) != 1 {
		t.Fatalf("peer %s: %d, %v; want 1", typ, len(all), err)
	}
	return all[0].ID
}

// rowOf returns the line of a listing that mentions s.
func rowOf(listing, s string) string {
	for _, l := range strings.Split(listing, "\n") {
		if strings.Contains(l, s) {
			return l
		}
	}
	return ""
}
