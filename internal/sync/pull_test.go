package sync_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kapgw/kapgw/internal/exchange"
	"github.com/kapgw/kapgw/internal/fhirpeer"
	"github.com/kapgw/kapgw/internal/fhirvalid"
	"github.com/kapgw/kapgw/internal/pgtest"
	"github.com/kapgw/kapgw/internal/search"
	"github.com/kapgw/kapgw/internal/secrets"
	"github.com/kapgw/kapgw/internal/store"
	kapsync "github.com/kapgw/kapgw/internal/sync"
)

// newPuller returns a pull worker over the rig's store and exchange log,
// with fast retries and small pages.
func newPuller(rig *pushRig, pageSize int) *kapsync.PullWorker {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	push := kapsync.NewWorker(rig.st, rig.xlog, noSecrets{}, log, time.Now, kapsync.Backoff{}, "pull-test")
	return kapsync.NewPullWorker(rig.st, push, rig.xlog, log, time.Now,
		kapsync.PullOptions{PageSize: pageSize, Attempts: 10, Backoff: kapsync.Backoff{Base: 20 * time.Millisecond, Cap: 2 * time.Second}})
}

// createAt creates a resource at the peer (not through the proxy) and
// returns its id.
func createAt(t testing.TB, base, body string) string {
	t.Helper()
	var r struct {
		ResourceType string `json:"resourceType"`
	}
	if err := json.Unmarshal([]byte(body), &r); err != nil {
		t.Fatal(err)
	}
	return sendTo(t, http.MethodPost, base+"/"+r.ResourceType, body)
}

func sendTo(t testing.TB, method, u, body string) string {
	t.Helper()
	req, err := http.NewRequest(method, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/fhir+json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		ID string `json:"id"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode/100 != 2 {
		t.Fatalf("%s %s: status %d, %v", method, u, resp.StatusCode, err)
	}
	return out.ID
}

func medStatement(patient, drug, status string) string {
	return fmt.Sprintf(`{"resourceType":"MedicationStatement","status":%q,"subject":{"reference":"Patient/%s"},
		"medicationCodeableConcept":{"text":%q},"effectiveDateTime":"2026-01-05","informationSource":{"reference":"Practitioner/p-9"}}`,
		status, patient, drug)
}

// pushed pushes the example episode to the peer through the fault proxy
// and returns the rig and our patient with the peer's id for it.
func pushed(t *testing.T) (*pushRig, *fhirpeer.Peer, *fhirpeer.Fault, store.SharedPatient) {
	t.Helper()
	ctx := context.Background()
	peer := fhirpeer.Start(t)
	fault := fhirpeer.NewFault(t, peer.Base)
	fault.Delay = 100 * time.Millisecond
	rig := newPushRig(t, store.Destination{BaseURL: fault.Base, Auth: "none", Concurrency: 4, Rate: 1000,
		Allow: string(kapsync.AllowLoopback)}, noSecrets{}, nil)
	rig.start(t)
	if _, err := rig.intake.Put(ctx, "ep-700001", homeDosing(t)); err != nil {
		t.Fatal(err)
	}
	want, err := rig.st.EpisodeResources(ctx, "ep-700001")
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "push", func() bool { return done(t, rig.st, want) })
	shared, err := rig.st.SharedPatients(ctx, "ehr-1")
	if err != nil || len(shared) != 1 || shared[0].RemoteID == "" {
		t.Fatalf("shared patients %+v, %v", shared, err)
	}
	return rig, peer, fault, shared[0]
}

// TestPullFromPeer pushes an episode to the Medplum peer, records a
// partner's medications, allergy and blood pressure for that patient at
// the peer, and pulls them back through a proxy that fails requests in
// every way: they are stored once each, searchable and in $everything,
// valid, with a Provenance, and a second pull stores nothing new.
func TestPullFromPeer(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	val := fhirvalid.New(t)
	rig, peer, fault, pat := pushed(t)
	for i := range 3 {
		createAt(t, peer.Base, medStatement(pat.RemoteID, fmt.Sprintf("drug-%d", i), "active"))
	}
	createAt(t, peer.Base, medStatement("someone-else", "other", "active"))
	createAt(t, peer.Base, fmt.Sprintf(`{"resourceType":"AllergyIntolerance","patient":{"reference":"Patient/%s"},
		"clinicalStatus":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical","code":"active"}]},
		"verificationStatus":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/allergyintolerance-verification","code":"confirmed"}]},
		"code":{"text":"penicillin"}}`, pat.RemoteID))
	createAt(t, peer.Base, fmt.Sprintf(`{"resourceType":"Observation","status":"final",
		"category":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/observation-category","code":"vital-signs"}]}],
		"code":{"coding":[{"system":"http://loinc.org","code":"85354-9","display":"Blood pressure panel"}]},
		"subject":{"reference":"Patient/%s"},"effectiveDateTime":"2026-01-04T10:00:00Z",
		"component":[{"code":{"coding":[{"system":"http://loinc.org","code":"8480-6"}]},"valueQuantity":{"value":142,"unit":"mmHg","system":"http://unitsofmeasure.org","code":"mm[Hg]"}},
		{"code":{"coding":[{"system":"http://loinc.org","code":"8462-4"}]},"valueQuantity":{"value":91,"unit":"mmHg","system":"http://unitsofmeasure.org","code":"mm[Hg]"}}]}`, pat.RemoteID))

	if err := rig.st.PutPull(ctx, store.PullConfig{PartnerID: "ehr-1", Interval: time.Hour,
		Types: []string{"MedicationStatement", "AllergyIntolerance", "Observation"}}, nil); err != nil {
		t.Fatal(err)
	}
	fault.Script(fhirpeer.Fail500, fhirpeer.Throttle429, fhirpeer.Drop, fhirpeer.Pass, fhirpeer.LoseResponse, fhirpeer.Slow)
	fault.Random(0.25, 3)   // and a quarter of the rest, every way
	pw := newPuller(rig, 2) // three statements: two pages
	sum, err := pw.Pull(ctx, "ehr-1")
	if err != nil {
		t.Fatalf("pull: %v (%+v; faults %v)", err, sum, fault.Counts())
	}
	if sum.Stored != 5 || sum.Unmatched != 0 || sum.Failed != 0 || sum.Pages < 4 {
		t.Fatalf("first pull %+v, want 5 stored over at least 4 pages", sum)
	}
	for _, a := range []fhirpeer.Action{fhirpeer.Fail500, fhirpeer.Throttle429, fhirpeer.Drop, fhirpeer.LoseResponse} {
		if fault.Counts()[a] == 0 {
			t.Errorf("fault %v never met", a)
		}
	}

	// Searchable, in $everything, valid, with the partner named.
	ms := searchIDs(t, rig.st, "MedicationStatement", "patient=Patient/"+pat.PatientID)
	if len(ms) != 3 {
		t.Fatalf("MedicationStatement?patient: %d, want 3", len(ms))
	}
	ev, err := rig.st.Search(ctx, store.SearchRequest{Compartment: pat.PatientID, Access: store.Access{All: true},
		Types: []string{"MedicationStatement", "AllergyIntolerance", "Observation", "Provenance"}, Query: search.Query{Count: 200}})
	if err != nil {
		t.Fatal(err)
	}
	var bodies [][]byte
	kinds := map[string]int{}
	for _, h := range ev.Hits {
		if !bytes.Contains(h.Body, []byte(`"source":"https://kapgw.example/fhir/partner/ehr-1"`)) {
			continue // the episode's own resources
		}
		kinds[h.Type]++
		bodies = append(bodies, h.Body)
	}
	if kinds["MedicationStatement"] != 3 || kinds["AllergyIntolerance"] != 1 || kinds["Observation"] != 1 || kinds["Provenance"] < 3 {
		t.Fatalf("$everything holds %v", kinds)
	}
	val.Check(t, bodies...)
	ext, err := rig.st.ExternalResources(ctx, pat.PatientID, "MedicationStatement")
	if err != nil || len(ext) != 3 {
		t.Fatalf("external statements %d, %v", len(ext), err)
	}
	if !bytes.Contains(ext[0].Body, []byte(`"subject":{"reference":"Patient/`+pat.PatientID+`"}`)) ||
		!bytes.Contains(ext[0].Body, []byte(fault.Base+"/Practitioner/p-9")) {
		t.Errorf("references not rewritten: %s", ext[0].Body)
	}

	// A second pull finds nothing new and writes nothing.
	provs := countProvenance(t, rig.st, pat.PatientID)
	again, err := pw.Pull(ctx, "ehr-1")
	if err != nil || again.Stored != 0 {
		t.Fatalf("second pull %+v, %v; want nothing stored", again, err)
	}
	for _, r := range ext {
		if h, err := rig.st.History(ctx, r.Type, r.ID); err != nil || len(h) != 1 {
			t.Errorf("%s/%s: %d versions, %v", r.Type, r.ID, len(h), err)
		}
	}
	if n := countProvenance(t, rig.st, pat.PatientID); n != provs {
		t.Errorf("second pull: %d Provenance, want still %d", n, provs)
	}

	// A change at the partner is a new version; the cursor moved on.
	var remoteIDs []string
	all, err := peer.All(ctx, "MedicationStatement")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range all {
		if bytes.Contains(r.Raw, []byte("drug-1")) {
			remoteIDs = append(remoteIDs, r.ID)
			changed := strings.Replace(string(r.Raw), `"status":"active"`, `"status":"stopped"`, 1)
			sendTo(t, http.MethodPut, peer.Base+"/MedicationStatement/"+r.ID, changed)
		}
	}
	third, err := pw.Pull(ctx, "ehr-1")
	if err != nil || third.Stored != 1 {
		t.Fatalf("pull after a change %+v, %v; want exactly the changed statement", third, err)
	}
	h, err := rig.st.History(ctx, "MedicationStatement", kapsync.ExternalID("ehr-1", "MedicationStatement", remoteIDs[0]))
	if err != nil || len(h) != 2 || !bytes.Contains(h[0].Body, []byte(`"status":"stopped"`)) {
		t.Fatalf("changed statement: %d versions, %v", len(h), err)
	}
	rows, err := rig.st.Exchanges(ctx, store.ExchangeFilter{PartnerID: "ehr-1", Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	// Every try is logged; the 500 and 429 as errors (Go's client itself
	// re-sends a GET whose reused connection was dropped, so those may
	// not show).
	pulls, failed := 0, 0
	for _, e := range rows {
		if e.Kind == "pull" && e.Direction == "in" && strings.HasPrefix(e.Operation, "GET ") {
			pulls++
			if e.Status == "error" {
				failed++
				if e.ErrorClass == "" || e.Code == "" && e.ErrorClass != "transport" && e.ErrorClass != "timeout" {
					t.Errorf("failed pull row without a class: %+v", e)
				}
			}
		}
	}
	if pulls < third.Pages || failed < 2 {
		t.Errorf("exchange log: %d pull requests, %d failed; want every try, the 500 and 429 failed", pulls, failed)
	}
}

// searchIDs runs a search as the clinic platform would see it.
func searchIDs(t testing.TB, st *store.Store, typ, query string) []string {
	t.Helper()
	vals, err := url.ParseQuery(query)
	if err != nil {
		t.Fatal(err)
	}
	q, err := search.New().Parse(typ, vals, false)
	if err != nil {
		t.Fatal(err)
	}
	q.Count = 200
	res, err := st.Search(context.Background(), store.SearchRequest{Query: q, Access: store.Access{All: true}})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, h := range res.Hits {
		ids = append(ids, h.ID)
	}
	return ids
}

// TestPullUnmatchedReported pulls from a partner that answers a patient
// search with a resource of another patient too: that one is counted,
// logged in the exchange log as unmatched, and not stored.
func TestPullUnmatchedReported(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	var base string
	partner := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		next := ""
		if r.URL.Query().Get("_lastUpdated") == "" && r.URL.Query().Get("page") == "" {
			next = fmt.Sprintf(`,"link":[{"relation":"next","url":"%s/Condition?page=2"}]`, base)
		}
		fmt.Fprintf(w, `{"resourceType":"Bundle","type":"searchset"%s,"entry":[
			{"resource":{"resourceType":"Condition","id":"c1","meta":{"lastUpdated":"2026-01-01T00:00:00Z"},"subject":{"reference":"Patient/their-1"},"code":{"text":"hypertension"}}},
			{"resource":{"resourceType":"Condition","id":"c2","meta":{"lastUpdated":"2026-01-02T00:00:00Z"},"subject":{"reference":"Patient/their-2"},"code":{"text":"other"}}}]}`, next)
	}))
	t.Cleanup(partner.Close)
	base = partner.URL + "/fhir"
	rig := newPushRig(t, store.Destination{BaseURL: base, Auth: "none", Concurrency: 1, Rate: 1000,
		Allow: string(kapsync.AllowLoopback)}, noSecrets{}, nil)
	if _, err := rig.intake.Put(ctx, "ep-700001", homeDosing(t)); err != nil {
		t.Fatal(err)
	}
	pat := patientOf(t, rig.st)
	if err := rig.st.RecordDelivered(ctx, "ehr-1", []store.Delivered{{Type: "Patient", ID: pat, VersionID: 1, RemoteID: "their-1"}}); err != nil {
		t.Fatal(err)
	}
	if err := rig.st.PutPull(ctx, store.PullConfig{PartnerID: "ehr-1", Interval: time.Hour, Types: []string{"Condition"}}, nil); err != nil {
		t.Fatal(err)
	}
	sum, err := newPuller(rig, 50).Pull(ctx, "ehr-1")
	if err != nil || sum.Stored != 1 || sum.Unmatched != 2 || sum.Pages != 2 {
		t.Fatalf("pull %+v, %v; want 1 stored, 2 unmatched over 2 pages", sum, err)
	}
	if _, err := rig.st.Read(ctx, "Condition", kapsync.ExternalID("ehr-1", "Condition", "c2")); err == nil {
		t.Fatal("the other patient's condition was stored")
	}
	cur, err := rig.st.Cursor(ctx, "ehr-1", pat, "Condition")
	if err != nil || cur.Cursor != "2026-01-02T00:00:00Z" || cur.Unmatched != 2 {
		t.Fatalf("cursor %+v, %v", cur, err)
	}
	rows, err := rig.st.Exchanges(ctx, store.ExchangeFilter{PartnerID: "ehr-1", Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	unmatched := 0
	for _, e := range rows {
		if e.ErrorClass == "unmatched" && len(e.Refs) == 1 && e.Refs[0] == "Condition/c2" {
			unmatched++
		}
	}
	if unmatched != 2 {
		t.Fatalf("exchange log has %d unmatched rows for Condition/c2, want 2", unmatched)
	}
}

// patientOf returns the id of the only Patient in the store.
func patientOf(t testing.TB, st *store.Store) string {
	t.Helper()
	ids := searchIDs(t, st, "Patient", "")
	if len(ids) != 1 {
		t.Fatalf("patients %v", ids)
	}
	return ids[0]
}

// countProvenance counts the Provenance resources of a patient.
func countProvenance(t testing.TB, st *store.Store, patientID string) int {
	t.Helper()
	res, err := st.Search(context.Background(), store.SearchRequest{Compartment: patientID, Access: store.Access{All: true},
		Types: []string{"Provenance"}, Query: search.Query{Count: 500}})
	if err != nil {
		t.Fatal(err)
	}
	return len(res.Hits)
}

// TestPullFindsPatientByIdentifier pulls for a patient whose push recorded
// no partner id: the partner's Patient is found by our patient identifier,
// and only when exactly one matches.
func TestPullFindsPatientByIdentifier(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	var matches atomic.Int32
	var searched atomic.Value
	partner := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/Patient") {
			searched.Store(r.URL.Query().Get("identifier"))
			entries := make([]string, matches.Load())
			for i := range entries {
				entries[i] = fmt.Sprintf(`{"resource":{"resourceType":"Patient","id":"their-%d"}}`, i+1)
			}
			fmt.Fprintf(w, `{"resourceType":"Bundle","type":"searchset","entry":[%s]}`, strings.Join(entries, ","))
			return
		}
		if r.URL.Query().Get("patient") != "their-1" {
			http.Error(w, "wrong patient", http.StatusBadRequest)
			return
		}
		fmt.Fprint(w, `{"resourceType":"Bundle","type":"searchset","entry":[
			{"resource":{"resourceType":"Condition","id":"c1","meta":{"lastUpdated":"2026-01-01T00:00:00Z"},"subject":{"reference":"Patient/their-1"},"code":{"text":"hypertension"}}}]}`)
	}))
	t.Cleanup(partner.Close)
	rig := newPushRig(t, store.Destination{BaseURL: partner.URL + "/fhir", Auth: "none", Concurrency: 1, Rate: 1000,
		Allow: string(kapsync.AllowLoopback)}, noSecrets{}, nil)
	if _, err := rig.intake.Put(ctx, "ep-700001", homeDosing(t)); err != nil {
		t.Fatal(err)
	}
	pat := patientOf(t, rig.st)
	if err := rig.st.RecordDelivered(ctx, "ehr-1", []store.Delivered{{Type: "Patient", ID: pat, VersionID: 1}}); err != nil {
		t.Fatal(err)
	}
	if err := rig.st.PutPull(ctx, store.PullConfig{PartnerID: "ehr-1", Interval: time.Hour, Types: []string{"Condition"}}, nil); err != nil {
		t.Fatal(err)
	}
	pw := newPuller(rig, 50)
	matches.Store(2)
	if sum, err := pw.Pull(ctx, "ehr-1"); err == nil || sum.Stored != 0 || sum.Failed != 1 {
		t.Fatalf("two partner patients: %+v, %v; want a failure and nothing stored", sum, err)
	}
	matches.Store(1)
	sum, err := pw.Pull(ctx, "ehr-1")
	if err != nil || sum.Stored != 1 {
		t.Fatalf("pull %+v, %v; want the condition stored", sum, err)
	}
	if s, _ := searched.Load().(string); !strings.HasPrefix(s, "https://kapgw.example/fhir/sid/patient|") {
		t.Fatalf("partner searched by identifier %q, want our patient identifier", s)
	}
}

// TestPullPostgres runs a paged pull and a re-pull on PostgreSQL: each
// page stored with its cursor, nothing new the second time, and nothing
// asked once the patient has revoked data sharing.
func TestPullPostgres(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	conditions := []string{
		`{"resourceType":"Condition","id":"c1","meta":{"lastUpdated":"2026-01-01T00:00:00.000Z"},"subject":{"reference":"Patient/their-1"},"code":{"text":"hypertension"}}`,
		`{"resourceType":"Condition","id":"c2","meta":{"lastUpdated":"2026-01-02T00:00:00.000Z"},"subject":{"reference":"Patient/their-1"},"code":{"text":"bipolar disorder"}}`,
	}
	var base string
	partner := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		after := strings.TrimPrefix(q.Get("_lastUpdated"), "ge")
		var match []string
		for _, c := range conditions {
			var m struct{ Meta struct{ LastUpdated string } }
			_ = json.Unmarshal([]byte(c), &m)
			if m.Meta.LastUpdated >= after {
				match = append(match, `{"resource":`+c+`}`)
			}
		}
		offset, _ := strconv.Atoi(q.Get("_offset"))
		link := ""
		if offset+1 < len(match) {
			q.Set("_offset", strconv.Itoa(offset+1))
			link = fmt.Sprintf(`,"link":[{"relation":"next","url":"%s/Condition?%s"}]`, base, q.Encode())
		}
		page := match[min(offset, len(match)):min(offset+1, len(match))]
		fmt.Fprintf(w, `{"resourceType":"Bundle","type":"searchset"%s,"entry":[%s]}`, link, strings.Join(page, ","))
	}))
	t.Cleanup(partner.Close)
	base = partner.URL + "/fhir"

	st, pw, consent := pgPuller(t, base, 1)
	sum, err := pw.Pull(ctx, "ehr-1")
	if err != nil || sum.Stored != 2 || sum.Pages < 2 {
		t.Fatalf("pull %+v, %v; want 2 stored, one page each", sum, err)
	}
	again, err := pw.Pull(ctx, "ehr-1")
	if err != nil || again.Stored != 0 || again.Pages != 1 {
		t.Fatalf("re-pull %+v, %v; want one empty page", again, err)
	}
	ext, err := st.ExternalResources(ctx, "pat-1")
	if err != nil || len(ext) != 2 {
		t.Fatalf("external %d, %v", len(ext), err)
	}
	if cur, err := st.Cursor(ctx, "ehr-1", "pat-1", "Condition"); err != nil || cur.Cursor != "2026-01-02T00:00:00.000Z" || cur.Pulled != 2 {
		t.Fatalf("cursor %+v, %v", cur, err)
	}
	if n := countProvenance(t, st, "pat-1"); n != 2 {
		t.Fatalf("%d Provenance, want one per stored page", n)
	}
	// Once the patient revokes data sharing, the partner is not polled
	// for them.
	revoked := time.Now().Add(-time.Minute)
	consent(&revoked)
	if sum, err := pw.Pull(ctx, "ehr-1"); err != nil || sum.Withheld != 1 || sum.Pages != 0 {
		t.Fatalf("pull after revocation %+v, %v; want the patient withheld", sum, err)
	}
}

// pgPuller registers partner ehr-1 at base (pulling Condition, pages of
// pageSize) for patient pat-1 (pushed as their-1, sharing with org-1) on a
// fresh PostgreSQL schema, and returns the store, the pull worker and a
// function that rewrites pat-1's consent.
func pgPuller(t *testing.T, base string, pageSize int) (*store.Store, *kapsync.PullWorker, func(until *time.Time)) {
	t.Helper()
	ctx := context.Background()
	st := openPostgresStore(t)
	if err := st.AddClient(ctx, store.Client{ID: "ehr-1", Name: "EHR", Kind: "partner", JWKS: []byte(`{"keys":[]}`), Orgs: []string{"org-1"}}); err != nil {
		t.Fatal(err)
	}
	if err := st.PutDestination(ctx, store.Destination{PartnerID: "ehr-1", BaseURL: base, Auth: "none", Concurrency: 1, Rate: 1000,
		Allow: string(kapsync.AllowLoopback)}); err != nil {
		t.Fatal(err)
	}
	consent := func(until *time.Time) {
		t.Helper()
		from := time.Now().Add(-time.Hour)
		c := store.EpisodeChange{Document: fmt.Appendf(nil, "doc %v", until), Digest: fmt.Sprint(until),
			Resources: []store.Resource{{Type: "Patient", ID: "pat-1", PatientID: "pat-1", Body: []byte(`{"resourceType":"Patient","id":"pat-1"}`)}},
			Access:    []store.PatientAccess{{PatientID: "pat-1", OrgID: "org-1", SharingFrom: &from, SharingUntil: until}}}
		if _, err := st.ApplyEpisode(ctx, "ep-1", func([]byte, string) (store.EpisodeChange, error) { return c, nil }); err != nil {
			t.Fatal(err)
		}
	}
	consent(nil)
	if err := st.RecordDelivered(ctx, "ehr-1", []store.Delivered{{Type: "Patient", ID: "pat-1", VersionID: 1, RemoteID: "their-1"}}); err != nil {
		t.Fatal(err)
	}
	if err := st.PutPull(ctx, store.PullConfig{PartnerID: "ehr-1", Interval: time.Hour, Types: []string{"Condition"}}, nil); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	dev, err := secrets.OpenDevStore(ctx, log, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	cipher, err := dev.Cipher(ctx, secrets.ExchangeKey)
	if err != nil {
		t.Fatal(err)
	}
	xlog := exchange.New(st, cipher, log, nil)
	pw := kapsync.NewPullWorker(st, kapsync.NewWorker(st, xlog, noSecrets{}, log, time.Now, kapsync.Backoff{}, "pg"), xlog, log,
		time.Now, kapsync.PullOptions{PageSize: pageSize})
	return st, pw, consent
}

// openPostgresStore opens a migrated store on a fresh PostgreSQL schema,
// dropped when the test ends.
func openPostgresStore(t testing.TB) *store.Store {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, store.Config{DatabaseURL: pgtest.SchemaURL(t, "pull_test_")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	return st
}

// offsetPartner is a partner FHIR API that pages Condition searches by
// offset, as the test peer and many servers do, whose conditions a test
// may change between two requests.
type offsetPartner struct {
	mu    sync.Mutex
	conds map[string]string // id -> lastUpdated
	// onRequest, when set, runs before each search is answered.
	onRequest func(n int)
	n         int
}

func (p *offsetPartner) set(id, lastUpdated string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.conds[id] = lastUpdated
}

func (p *offsetPartner) handler(base *string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		p.n++
		hook, n := p.onRequest, p.n
		p.mu.Unlock()
		if hook != nil {
			hook(n)
		}
		p.mu.Lock()
		defer p.mu.Unlock()
		q := r.URL.Query()
		lu := q.Get("_lastUpdated")
		var ids []string
		for id, at := range p.conds {
			switch {
			case lu == "",
				strings.HasPrefix(lu, "ge") && at >= lu[2:],
				strings.HasPrefix(lu, "gt") && at > lu[2:]:
				ids = append(ids, id)
			}
		}
		slices.SortFunc(ids, func(a, b string) int { return strings.Compare(p.conds[a]+a, p.conds[b]+b) })
		offset, _ := strconv.Atoi(q.Get("_offset"))
		size, _ := strconv.Atoi(q.Get("_count"))
		link := ""
		if offset+size < len(ids) {
			q.Set("_offset", strconv.Itoa(offset+size))
			link = fmt.Sprintf(`,"link":[{"relation":"next","url":"%s/Condition?%s"}]`, *base, q.Encode())
		}
		var entries []string
		for _, id := range ids[min(offset, len(ids)):min(offset+size, len(ids))] {
			entries = append(entries, fmt.Sprintf(`{"resource":{"resourceType":"Condition","id":%q,"meta":{"lastUpdated":%q},`+
				`"subject":{"reference":"Patient/their-1"},"code":{"text":"condition %s at %s"}}}`, id, p.conds[id], id, p.conds[id]))
		}
		fmt.Fprintf(w, `{"resourceType":"Bundle","type":"searchset"%s,"entry":[%s]}`, link, strings.Join(entries, ","))
	}
}

// TestPullMissesNothing checks the two ways a cursor-and-next-link pull
// loses a partner's change: a resource updated while a run pages through
// an offset-paged result (every later one shifts back by one, and the one
// crossing the page boundary is never read), and a resource committed
// after a poll with exactly the cursor's timestamp.
func TestPullMissesNothing(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	p := &offsetPartner{conds: map[string]string{
		"c1": "2026-01-01T00:00:00.000Z", "c2": "2026-01-02T00:00:00.000Z",
		"c3": "2026-01-03T00:00:00.000Z", "c4": "2026-01-04T00:00:00.000Z",
	}}
	var base string
	partner := httptest.NewServer(p.handler(&base))
	t.Cleanup(partner.Close)
	base = partner.URL + "/fhir"
	st, pw, _ := pgPuller(t, base, 2)
	// c1 is updated right after the first page is answered: it moves to
	// the end of the result.
	p.onRequest = func(n int) {
		if n == 2 {
			p.set("c1", "2026-01-05T00:00:00.000Z")
		}
	}
	if _, err := pw.Pull(ctx, "ehr-1"); err != nil {
		t.Fatal(err)
	}
	p.onRequest = nil
	// A resource committed later with the cursor's very timestamp.
	p.set("c5", "2026-01-05T00:00:00.000Z")
	if _, err := pw.Pull(ctx, "ehr-1"); err != nil {
		t.Fatal(err)
	}
	ext, err := st.ExternalResources(ctx, "pat-1")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, r := range ext {
		for _, id := range []string{"c1 at 2026-01-05", "c2 at", "c3 at", "c4 at", "c5 at"} {
			if bytes.Contains(r.Body, []byte("condition "+id)) {
				got[id] = true
			}
		}
	}
	if len(got) != 5 {
		t.Fatalf("stored %v; want c1 (its update), c2, c3, c4 and c5", got)
	}
}
