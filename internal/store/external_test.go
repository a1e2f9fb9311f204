package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/kapgw/kapgw/internal/search"
)

// TestExternalSQLite and TestExternalPostgres run the pulled-resource store
// on both databases.
func TestExternalSQLite(t *testing.T) {
	t.Parallel()
	testExternal(t, openSQLiteTest)
}

func TestExternalPostgres(t *testing.T) {
	t.Parallel()
	testExternal(t, openPostgresTest)
}

func testExternal(t *testing.T, open opener) {
	t.Helper()
	tests := map[string]func(*testing.T, opener){
		"StoreAndRepull":      testPulledStoreAndRepull,
		"FailureRollsBack":    testPulledRollback,
		"OtherPatientRefused": testPulledOtherPatient,
		"ReadInEpisodeTx":     testExternalInEpisodeTx,
		"PullConfig":          testPullConfig,
	}
	for name, test := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			test(t, open)
		})
	}
}

// pulled builds a pulled resource of patient pat whose body carries note.
func pulled(typ, id, pat, note string) Pulled {
	subject := "subject"
	if typ == "AllergyIntolerance" {
		subject = "patient"
	}
	body := fmt.Sprintf(`{"resourceType":%q,"id":%q,"status":"active",%q:{"reference":"Patient/%s"},"note":[{"text":%q}]}`,
		typ, id, subject, pat, note)
	return Pulled{Resource: Resource{Type: typ, ID: id, PatientID: pat, Body: []byte(body)}, RemoteID: "remote-" + id}
}

// provenanceOf builds a Provenance targeting every written entry.
func provenanceOf(pat string) ProvenanceFunc {
	return func(written []Entry, recorded time.Time) (Resource, error) {
		var targets []string
		for _, e := range written {
			targets = append(targets, fmt.Sprintf(`{"reference":"%s/%s"}`, e.Type, e.ID))
		}
		id := fmt.Sprintf("prov-%s-%d", written[0].ID, written[0].VersionID)
		body := fmt.Sprintf(`{"resourceType":"Provenance","id":%q,"target":[%s],"recorded":%q,"agent":[{"who":{"reference":"Organization/partner"}}]}`,
			id, strings.Join(targets, ","), recorded.Format(time.RFC3339Nano))
		return Resource{Type: "Provenance", ID: id, PatientID: pat, Body: []byte(body)}, nil
	}
}

// seedPatient accepts an episode with one Patient.
func seedPatient(tb testing.TB, s *Store, pat string) {
	tb.Helper()
	c := change(nil, res("Patient", pat, pat, "p"))
	if _, err := s.ApplyEpisode(context.Background(), "ep-"+pat, func([]byte, string) (EpisodeChange, error) { return c, nil }); err != nil {
		tb.Fatalf("seed patient: %v", err)
	}
}

func testPulledStoreAndRepull(t *testing.T, open opener) {
	ctx := context.Background()
	s := migrated(t, open, newClock().now)
	seedPatient(t, s, "pat1")
	page := PullPage{PartnerID: "ehr", PatientID: "pat1", Type: "MedicationStatement", Cursor: "2026-01-01T00:00:00Z",
		Resources: []Pulled{pulled("MedicationStatement", "x-ms-1", "pat1", "sertraline"), pulled("MedicationStatement", "x-ms-2", "pat1", "lithium")},
		Unmatched: 1, Provenance: provenanceOf("pat1")}
	got, err := s.StorePulled(ctx, page)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Entries) != 2 || got.Entries[0].Action != ActionCreated || got.Provenance == nil || got.Provenance.Action != ActionCreated {
		t.Fatalf("first store: %+v", got)
	}
	// Searchable like any resource, in the patient's compartment.
	_, ids := find(t, s, "MedicationStatement", "patient=Patient/pat1", Access{All: true}, Page{})
	wantIDs(t, "search by patient", ids, "x-ms-1", "x-ms-2")
	_, ids = find(t, s, "Provenance", "target=MedicationStatement/x-ms-1", Access{All: true}, Page{})
	wantIDs(t, "provenance by target", ids, got.Provenance.ID)
	everything, err := s.Search(ctx, SearchRequest{Compartment: "pat1", Access: Access{All: true}, Query: search.Query{Count: 50}})
	if err != nil || len(everything.Hits) != 4 { // Patient, two statements, Provenance
		t.Fatalf("compartment: %d hits, %v; want 4", len(everything.Hits), err)
	}
	// A re-pull of the same content writes no version and no Provenance.
	page.Cursor, page.Unmatched = "2026-01-02T00:00:00Z", 0
	again, err := s.StorePulled(ctx, page)
	if err != nil {
		t.Fatal(err)
	}
	if again.Provenance != nil || again.Entries[0].Action != ActionUnchanged || again.Entries[0].VersionID != 1 {
		t.Fatalf("re-pull: %+v", again)
	}
	if h, err := s.History(ctx, "MedicationStatement", "x-ms-1"); err != nil || len(h) != 1 {
		t.Fatalf("history after re-pull: %d versions, %v", len(h), err)
	}
	// Pulled counts new versions only: the re-pull added none.
	cur, err := s.Cursor(ctx, "ehr", "pat1", "MedicationStatement")
	if err != nil || cur.Cursor != "2026-01-02T00:00:00Z" || cur.Pulled != 2 || cur.Unmatched != 1 {
		t.Fatalf("cursor: %+v, %v", cur, err)
	}
	// A changed resource is a new version with its own Provenance.
	page.Resources = page.Resources[:1]
	page.Resources[0] = pulled("MedicationStatement", "x-ms-1", "pat1", "sertraline stopped")
	page.Cursor = ""
	third, err := s.StorePulled(ctx, page)
	if err != nil || third.Entries[0].VersionID != 2 || third.Provenance == nil || third.Provenance.ID == got.Provenance.ID {
		t.Fatalf("changed: %+v, %v", third, err)
	}
	if cur, _ := s.Cursor(ctx, "ehr", "pat1", "MedicationStatement"); cur.Cursor != "2026-01-02T00:00:00Z" {
		t.Fatalf("empty cursor moved it to %q", cur.Cursor)
	}
	ext, err := s.ExternalResources(ctx, "pat1")
	if err != nil || len(ext) != 2 || !strings.Contains(string(ext[0].Body), "stopped") || !strings.Contains(string(ext[0].Body), `"versionId":"2"`) {
		t.Fatalf("external: %d, %v", len(ext), err)
	}
	if ext, err := s.ExternalResources(ctx, "pat1", "AllergyIntolerance"); err != nil || len(ext) != 0 {
		t.Fatalf("external allergies: %d, %v; want none", len(ext), err)
	}
}

func testPulledRollback(t *testing.T, open opener) {
	ctx := context.Background()
	s := migrated(t, open, newClock().now)
	boom := errors.New("boom")
	_, err := s.StorePulled(ctx, PullPage{PartnerID: "ehr", PatientID: "pat1", Type: "Condition", Cursor: "c1",
		Resources:  []Pulled{pulled("Condition", "x-c-1", "pat1", "htn")},
		Provenance: func([]Entry, time.Time) (Resource, error) { return Resource{}, boom }})
	if !errors.Is(err, boom) {
		t.Fatalf("error %v, want boom", err)
	}
	if _, err := s.Read(ctx, "Condition", "x-c-1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("read after rollback: %v, want not found", err)
	}
	if cur, err := s.Cursor(ctx, "ehr", "pat1", "Condition"); err != nil || cur.Cursor != "" {
		t.Fatalf("cursor after rollback: %+v, %v", cur, err)
	}
	if ext, err := s.ExternalResources(ctx, "pat1"); err != nil || len(ext) != 0 {
		t.Fatalf("external after rollback: %d, %v", len(ext), err)
	}
}

func testPulledOtherPatient(t *testing.T, open opener) {
	s := migrated(t, open, newClock().now)
	_, err := s.StorePulled(context.Background(), PullPage{PartnerID: "ehr", PatientID: "pat1", Type: "Observation",
		Resources: []Pulled{pulled("Observation", "x-o-1", "pat2", "bp")}})
	if err == nil {
		t.Fatal("a resource of another patient was stored")
	}
}

func testExternalInEpisodeTx(t *testing.T, open opener) {
	ctx := context.Background()
	s := migrated(t, open, newClock().now)
	_, err := s.StorePulled(ctx, PullPage{PartnerID: "ehr", PatientID: "pat1", Type: "AllergyIntolerance",
		Resources: []Pulled{pulled("AllergyIntolerance", "x-a-1", "pat1", "ketamine"), pulled("MedicationStatement", "x-ms-9", "pat1", "maoi")}})
	if err != nil {
		t.Fatal(err)
	}
	var seen []string
	c := change(nil, res("Patient", "pat1", "pat1", "p"))
	_, err = s.ApplyEpisodeTx(ctx, "ep1", func([]byte, string) (EpisodeChange, error) { return c, nil },
		func(ctx context.Context, tx Tx, _ ApplyResult) error {
			rs, err := s.ExternalResourcesTx(ctx, tx, "pat1", "MedicationStatement", "MedicationRequest")
			for _, r := range rs {
				seen = append(seen, r.Type+"/"+r.ID)
			}
			return err
		})
	if err != nil {
		t.Fatal(err)
	}
	wantIDs(t, "external in episode tx", seen, "MedicationStatement/x-ms-9")
}

func testPullConfig(t *testing.T, open opener) {
	ctx := context.Background()
	s := migrated(t, open, newClock().now)
	c := PullConfig{PartnerID: "ehr", Types: []string{"MedicationStatement"}, Interval: 5 * time.Minute}
	if err := s.PutPull(ctx, c, nil); !errors.Is(err, ErrNotFound) {
		t.Fatalf("pull without destination: %v, want not found", err)
	}
	if err := s.AddClient(ctx, Client{ID: "ehr", Name: "EHR", Kind: "partner", JWKS: []byte(`{"keys":[]}`)}); err != nil {
		t.Fatal(err)
	}
	if err := s.PutDestination(ctx, Destination{PartnerID: "ehr", BaseURL: "https://ehr.example/fhir", Auth: "none"}); err != nil {
		t.Fatal(err)
	}
	if err := s.PutPull(ctx, c, nil); err != nil {
		t.Fatal(err)
	}
	c.Types, c.Disabled = []string{"Condition", "Observation"}, true
	if err := s.PutPull(ctx, c, nil); err != nil {
		t.Fatal(err)
	}
	got, err := s.Pull(ctx, "ehr")
	if err != nil || len(got.Types) != 2 || !got.Disabled || got.Interval != 5*time.Minute {
		t.Fatalf("pull: %+v, %v", got, err)
	}
	if ps, err := s.Pulls(ctx); err != nil || len(ps) != 1 {
		t.Fatalf("pulls: %+v, %v", ps, err)
	}
	// A failing enqueue rolls the pull back; start-up enqueues enabled
	// pulls only.
	c.Disabled = false
	boom := errors.New("boom")
	if err := s.PutPull(ctx, c, func(context.Context, Tx) error { return boom }); !errors.Is(err, boom) {
		t.Fatalf("put pull with failing enqueue: %v", err)
	}
	if got, _ := s.Pull(ctx, "ehr"); !got.Disabled {
		t.Fatal("the pull was enabled although its job was not enqueued")
	}
	var enqueued []string
	each := func(_ context.Context, _ Tx, c PullConfig) error {
		enqueued = append(enqueued, c.PartnerID)
		return nil
	}
	if err := s.EnqueuePulls(ctx, each); err != nil || len(enqueued) != 0 {
		t.Fatalf("enqueue disabled pulls: %v, %v", enqueued, err)
	}
	if err := s.PutPull(ctx, c, func(context.Context, Tx) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if err := s.EnqueuePulls(ctx, each); err != nil || len(enqueued) != 1 || enqueued[0] != "ehr" {
		t.Fatalf("enqueue pulls: %v, %v", enqueued, err)
	}
}
