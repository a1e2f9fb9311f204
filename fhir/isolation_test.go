package fhir_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/kapgw/kapgw/fhir"
	"github.com/kapgw/kapgw/internal/auth"
	"github.com/kapgw/kapgw/internal/kap/kaptest"
	"github.com/kapgw/kapgw/internal/search"
	"github.com/kapgw/kapgw/internal/store"
	"github.com/kapgw/kapgw/mappers"
)

// TestAccessMatrix is the access matrix of the partner API on SQLite and
// PostgreSQL: two partners serving different care organizations, one
// patient each. Partner A gets nothing of partner B's patient on any path
// (read, vread, searches, includes, revincludes, histories, $everything);
// a later document revoking A's patient's data-sharing consent cuts A off
// on every path at once; a scope without a type drops included resources of
// that type.
func TestAccessMatrix(t *testing.T) {
	t.Parallel()
	for _, kind := range []string{"sqlite", "postgres"} {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			testAccessMatrix(t, isolationStore(t, kind))
		})
	}
}

// isolationStore opens a migrated store: SQLite in a temp dir, or a fresh
// PostgreSQL database on KAPGW_TEST_DATABASE_URL.
func isolationStore(t *testing.T, kind string) *store.Store {
	t.Helper()
	cfg := store.Config{DataDir: t.TempDir()}
	if kind == "postgres" {
		cfg.DatabaseURL = freshPostgres(t)
	}
	ctx := context.Background()
	st, err := store.Open(ctx, cfg, time.Now)
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.Migrate(ctx); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	return st
}

// freshPostgres creates an empty database on KAPGW_TEST_DATABASE_URL and
// returns its URL.
func freshPostgres(tb testing.TB) string {
	tb.Helper()
	base := os.Getenv("KAPGW_TEST_DATABASE_URL")
	if base == "" {
		tb.Fatal("KAPGW_TEST_DATABASE_URL is not set: run through scripts/test.sh")
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		tb.Fatal(err)
	}
	defer conn.Close(ctx)
	name := fmt.Sprintf("kapgw_iso_%d", time.Now().UnixNano())
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		tb.Fatal(err)
	}
	u, err := url.Parse(base)
	if err != nil {
		tb.Fatal(err)
	}
	u.Path = "/" + name
	return u.String()
}

// Patients and organizations of the matrix. Episode A is the home-dosing
// example (org-med-1); episode B is four-dosings moved to other
// organizations.
const (
	episodeA  = "ep-700001"
	episodeB  = "ep-700002"
	episodeA2 = "ep-700009"
)

// The FHIR ids of the two patients.
var (
	patientA = mappers.ID("Patient", "pt-700001")
	patientB = mappers.ID("Patient", "pt-700002")
)

func episodeBDoc() []byte {
	doc := kaptest.Example("four-dosings")
	doc = bytes.ReplaceAll(doc, []byte(`"org-med-1"`), []byte(`"org-med-9"`))
	return bytes.ReplaceAll(doc, []byte(`"org-thr-23"`), []byte(`"org-thr-99"`))
}

// matrixClient is a partner's view of the API: the server and its token.
type matrixClient struct {
	url string
	tok string
}

// get fetches path with the client's token and decodes a Bundle.
func (m matrixClient) get(t *testing.T, path string) (int, searchBundle, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, m.url+path, nil)
	req.Header.Set("Authorization", "Bearer "+m.tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	var body bytes.Buffer
	_, _ = body.ReadFrom(resp.Body)
	var b searchBundle
	_ = json.Unmarshal(body.Bytes(), &b)
	return resp.StatusCode, b, body.Bytes()
}

func testAccessMatrix(t *testing.T, st *store.Store) {
	o := options(st)
	o.RateLimits = fhir.RateLimits{PartnerDefault: 1_000_000}
	srv := startAuthed(t, st, o)
	putEpisode(t, srv, episodeA, kaptest.Example("home-dosing"))
	putEpisode(t, srv, episodeB, episodeBDoc())
	// Patient A's second episode, with the same consent; its later
	// document revokes it below.
	putEpisode(t, srv, episodeA2, bytes.ReplaceAll(kaptest.Example("home-dosing"), []byte(episodeA), []byte(episodeA2)))

	keyA := registerClient(t, st, "ehr-a", auth.KindPartner, []string{"system/*.rs"}, []string{"org-med-1"}, 1_000_000)
	keyB := registerClient(t, st, "ehr-b", auth.KindPartner, []string{"system/*.rs"}, []string{"org-med-9"}, 1_000_000)
	a := matrixClient{url: srv.URL, tok: token(t, srv, "ehr-a", keyA, "system/*.rs")}
	b := matrixClient{url: srv.URL, tok: token(t, srv, "ehr-b", keyB, "system/*.rs")}

	resA := compartmentOf(t, a, patientA)
	resB := compartmentOf(t, b, patientB)
	if len(resA) < 10 || len(resB) < 10 {
		t.Fatalf("each partner should see its own patient: A %d, B %d resources", len(resA), len(resB))
	}
	// Positive control: A's own revinclude works, so empty answers below
	// mean hidden, not broken.
	if _, bun, body := a.get(t, "/fhir/r4/Encounter?_revinclude=Observation:encounter&_count=100"); len(bun.refs("include")) == 0 {
		t.Fatalf("A's Encounters include no Observations: %s", body)
	}

	hiddenA := hiddenSearches(patientA, identifierOf(t, srv, patientA))
	hiddenB := hiddenSearches(patientB, identifierOf(t, srv, patientB))
	assertHidden(t, a, patientB, resB, hiddenB)
	assertHidden(t, b, patientA, resA, hiddenA)

	t.Run("scope without a type drops its includes", func(t *testing.T) {
		narrow := matrixClient{url: srv.URL, tok: token(t, srv, "ehr-a", keyA, "system/Encounter.rs system/Patient.r")}
		_, bun, body := narrow.get(t, "/fhir/r4/Encounter?_revinclude=Observation:encounter&_include=Encounter:subject&_count=100")
		if len(bun.refs("match")) == 0 {
			t.Fatalf("no Encounters: %s", body)
		}
		for _, r := range bun.refs("include") {
			if !strings.HasPrefix(r, "Patient/") {
				t.Errorf("included %s without a scope for its type", r)
			}
		}
		if st, _, _ := narrow.get(t, "/fhir/r4/Observation?patient="+patientA); st != http.StatusForbidden {
			t.Errorf("Observation search without its scope: %d, want 403", st)
		}
		_, bun, _ = narrow.get(t, "/fhir/r4/Patient/"+patientA+"/$everything?_count=1000")
		for _, r := range bun.refs("match") {
			if !strings.HasPrefix(r, "Patient/") && !strings.HasPrefix(r, "Encounter/") {
				t.Errorf("$everything returned %s without a scope for its type", r)
			}
		}
	})

	// A later document of patient A's second episode revokes the
	// data-sharing consent: partner A sees nothing of the patient any more,
	// the first episode's resources included; B is unaffected.
	revoked := time.Now().Add(-time.Minute).UTC().Format(time.RFC3339)
	doc := bytes.Replace(kaptest.Example("home-dosing"),
		[]byte(`"kind": "data-sharing",
      "signedAt": "2026-03-21T18:00:00Z"`),
		[]byte(`"kind": "data-sharing", "signedAt": "2026-03-21T18:00:00Z", "revokedAt": "`+revoked+`"`), 1)
	if !bytes.Contains(doc, []byte(revoked)) {
		t.Fatal("the example's data-sharing consent is not where the test expects it")
	}
	putEpisode(t, srv, episodeA2, bytes.ReplaceAll(doc, []byte(episodeA), []byte(episodeA2)))
	assertHidden(t, a, patientA, resA, hiddenA)
	if got := compartmentOf(t, b, patientB); len(got) != len(resB) {
		t.Errorf("B's view changed with A's consent: %d resources, was %d", len(got), len(resB))
	}
}

// putEpisode stores an episode document through the intake API as the
// clinic platform.
func putEpisode(t *testing.T, srv *httptest.Server, id string, doc []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPut, srv.URL+"/kap/v1/episodes/"+id, bytes.NewReader(doc))
	req.Header.Set("Content-Type", "application/json")
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatalf("put %s: %v", id, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		var body bytes.Buffer
		_, _ = body.ReadFrom(resp.Body)
		t.Fatalf("put %s: %d %s", id, resp.StatusCode, body.Bytes())
	}
}

// identifierOf returns the system|value of patient's first identifier, as
// the clinic platform reads it.
func identifierOf(t *testing.T, srv *httptest.Server, patient string) string {
	t.Helper()
	resp, body, _ := fetch(t, srv, "/fhir/r4/Patient/"+patient)
	var p struct {
		Identifier []struct{ System, Value string }
	}
	if err := json.Unmarshal(body, &p); err != nil || resp.StatusCode != http.StatusOK || len(p.Identifier) == 0 {
		t.Fatalf("read %s as the clinic: %d %.200s", patient, resp.StatusCode, body)
	}
	return p.Identifier[0].System + "|" + p.Identifier[0].Value
}

// compartmentOf returns Type/id of every resource of patient's
// compartment c sees, following next links.
func compartmentOf(t *testing.T, c matrixClient, patient string) []string {
	t.Helper()
	var out []string
	next := "/fhir/r4/Patient/" + patient + "/$everything?_count=1000"
	for next != "" {
		st, bun, body := c.get(t, next)
		if st != http.StatusOK {
			t.Fatalf("$everything of %s: %d %s", patient, st, body)
		}
		out = append(out, bun.refs("match")...)
		next = strings.TrimPrefix(bun.link("next"), c.url)
	}
	slices.Sort(out)
	return out
}

// assertHidden checks that c gets nothing of patient's resources res on
// any path: 404 for reads, vreads, instance histories and $everything, and
// none of them in any search, include, revinclude or type history.
func assertHidden(t *testing.T, c matrixClient, patient string, res, searches []string) {
	t.Helper()
	hidden := make(map[string]bool, len(res))
	for _, r := range res {
		hidden[r] = true
		for _, p := range []string{"/fhir/r4/" + r, "/fhir/r4/" + r + "/_history/1", "/fhir/r4/" + r + "/_history"} {
			if st, _, body := c.get(t, p); st != http.StatusNotFound {
				t.Errorf("GET %s: %d, want 404: %.200s", p, st, body)
			}
		}
	}
	if st, _, _ := c.get(t, "/fhir/r4/Patient/"+patient+"/$everything"); st != http.StatusNotFound {
		t.Errorf("$everything of a hidden patient: %d, want 404", st)
	}
	for _, p := range searches {
		st, bun, body := c.get(t, p)
		if st != http.StatusOK {
			t.Errorf("GET %s: %d, want 200: %.300s", p, st, body)
			continue
		}
		for _, r := range append(bun.refs("match"), bun.refs("include")...) {
			if hidden[r] {
				t.Errorf("GET %s returned hidden %s", p, r)
			}
		}
	}
}

// hiddenSearches are the searches assertHidden runs: by patient, subject,
// _id and identifier; every type with every _include and _revinclude the
// CapabilityStatement advertises; every type history.
func hiddenSearches(patient, identifier string) []string {
	ref := "Patient/" + patient
	out := []string{
		"/fhir/r4/Observation?patient=" + ref, "/fhir/r4/Observation?patient=" + patient,
		"/fhir/r4/Observation?subject=" + ref + "&_count=1000",
		"/fhir/r4/Encounter?patient=" + patient + "&_revinclude=Observation:encounter",
		"/fhir/r4/Patient?_id=" + patient, "/fhir/r4/Patient?_id=" + patient + "&_revinclude=Observation:patient",
		"/fhir/r4/Patient?identifier=" + url.QueryEscape(identifier),
		"/fhir/r4/Patient?identifier=" + url.QueryEscape(identifier[strings.IndexByte(identifier, '|')+1:]),
		"/fhir/r4/CarePlan?subject=" + ref + "&_include=CarePlan:subject",
		"/fhir/r4/Provenance?_revinclude=Provenance:target&_count=1000",
	}
	reg := search.New()
	revs := map[string][]string{}
	for _, from := range reg.Types() {
		for _, p := range reg.Includes(from) {
			for _, to := range reg.Types() {
				if p.Target == "" || p.Target == to {
					revs[to] = append(revs[to], from+":"+p.Name)
				}
			}
		}
	}
	for _, typ := range reg.Types() {
		q := url.Values{"_count": {"1000"}}
		for _, p := range reg.Includes(typ) {
			q.Add("_include", typ+":"+p.Name)
		}
		q["_revinclude"] = revs[typ]
		q["_revinclude:iterate"] = revs["Encounter"]
		out = append(out, "/fhir/r4/"+typ+"?"+q.Encode(), "/fhir/r4/"+typ+"/_history?_count=1000")
	}
	return out
}
