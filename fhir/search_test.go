package fhir_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/kapgw/kapgw/fhir"
	"github.com/kapgw/kapgw/internal/auth"
	"github.com/kapgw/kapgw/internal/fhirvalid"
	"github.com/kapgw/kapgw/internal/intake"
	"github.com/kapgw/kapgw/internal/kap/kaptest"
	"github.com/kapgw/kapgw/internal/search"
	"github.com/kapgw/kapgw/internal/store"
)

// fixedAuth authenticates every request as one principal.
type fixedAuth struct{ p auth.Principal }

func (a fixedAuth) Authenticate(*http.Request) (auth.Principal, error) { return a.p, nil }

// searchServer serves the API over a SQLite store holding every example
// episode, to callers authenticated as p.
func searchServer(t *testing.T, p auth.Principal) (*httptest.Server, *store.Store) {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, store.Config{DataDir: t.TempDir()}, time.Now)
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.Migrate(ctx); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	in := intake.New(st, time.Now, "")
	for _, name := range kaptest.Examples() {
		doc := kaptest.Example(name)
		var head struct{ ID string }
		if err := json.Unmarshal(doc, &head); err != nil {
			t.Fatal(err)
		}
		if _, err := in.Put(ctx, head.ID, doc); err != nil {
			t.Fatalf("put %s: %v", name, err)
		}
	}
	srv := httptest.NewServer(fhir.NewHandler(fhir.Options{
		Log: slog.New(slog.NewJSONHandler(io.Discard, nil)), Intake: in, Reader: st, Search: st, Ready: st,
		Auth: fixedAuth{p}, MaxBodyBytes: maxBody, Now: time.Now, RateLimits: fhir.RateLimits{PartnerDefault: 1_000_000},
	}))
	t.Cleanup(srv.Close)
	return srv, st
}

var admin = auth.Principal{ClientID: "admin", Kind: auth.KindAdmin, Scopes: []string{"system/*.rs"}, Access: store.Access{All: true}}

// searchBundle is the part of a Bundle the tests read.
type searchBundle struct {
	ResourceType, Type string
	Total              *int
	Link               []struct{ Relation, URL string }
	Entry              []struct {
		FullURL  string
		Resource json.RawMessage
		Search   struct{ Mode string }
	}
}

func (b searchBundle) link(rel string) string {
	for _, l := range b.Link {
		if l.Relation == rel {
			return l.URL
		}
	}
	return ""
}

func (b searchBundle) refs(mode string) []string {
	var out []string
	for _, e := range b.Entry {
		if e.Search.Mode == mode {
			var r struct{ ResourceType, ID string }
			_ = json.Unmarshal(e.Resource, &r)
			out = append(out, r.ResourceType+"/"+r.ID)
		}
	}
	return out
}

// get fetches an absolute or server-relative URL and decodes a Bundle.
func fetch(t *testing.T, srv *httptest.Server, u string, header ...string) (*http.Response, []byte, searchBundle) {
	t.Helper()
	if !strings.HasPrefix(u, "http") {
		u = srv.URL + u
	}
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var b searchBundle
	_ = json.Unmarshal(body, &b)
	return resp, body, b
}

func firstPatient(t *testing.T, srv *httptest.Server) string {
	t.Helper()
	_, _, b := fetch(t, srv, "/fhir/r4/Patient?_count=1")
	if len(b.Entry) != 1 {
		t.Fatalf("no patient")
	}
	return strings.TrimPrefix(b.refs("match")[0], "Patient/")
}

func TestSearchBundles(t *testing.T) {
	t.Parallel()
	srv, _ := searchServer(t, admin)
	v := fhirvalid.New(t)
	pat := firstPatient(t, srv)
	resp, body, b := fetch(t, srv, "/fhir/r4/Observation?patient="+pat+"&_count=2&_total=accurate&_include=Observation:encounter&_revinclude=Provenance:target")
	if resp.StatusCode != 200 || b.Type != "searchset" || b.Total == nil || *b.Total < 3 {
		t.Fatalf("status %d type %s total %v: %s", resp.StatusCode, b.Type, b.Total, body)
	}
	if len(b.refs("match")) != 2 || len(b.refs("include")) == 0 || b.link("next") == "" || b.link("previous") != "" {
		t.Fatalf("page 1: matches %v includes %v links %v", b.refs("match"), b.refs("include"), b.Link)
	}
	v.Check(t, body)
	seen := map[string]bool{}
	for _, r := range b.refs("match") {
		seen[r] = true
	}
	next := b.link("next")
	for next != "" {
		_, body, b = fetch(t, srv, next)
		v.Check(t, body)
		for _, r := range b.refs("match") {
			if seen[r] {
				t.Fatalf("%s repeated across pages", r)
			}
			seen[r] = true
		}
		if b.link("previous") == "" {
			t.Fatal("a later page has no previous link")
		}
		next = b.link("next")
	}
	if len(seen) != *b.Total {
		t.Fatalf("paged through %d, total %d", len(seen), *b.Total)
	}
	_, body, b = fetch(t, srv, "/fhir/r4/Observation?_summary=count&patient="+pat)
	if b.Total == nil || len(b.Entry) != 0 {
		t.Fatalf("_summary=count: %s", body)
	}
	v.Check(t, body)
	_, body, _ = fetch(t, srv, "/fhir/r4/Observation?_elements=status,code,subject&_count=3")
	if strings.Contains(string(body), "effectiveDateTime") || !strings.Contains(string(body), "SUBSETTED") {
		t.Fatalf("_elements: %s", body)
	}
	v.Check(t, body)
	form := url.Values{"patient": {pat}, "_count": {"1"}}
	pr, err := srv.Client().Post(srv.URL+"/fhir/r4/Observation/_search", "application/x-www-form-urlencoded", strings.NewReader(form.Encode()))
	if err != nil || pr.StatusCode != 200 {
		t.Fatalf("POST _search: %v %v", pr, err)
	}
	pr.Body.Close()
}

func TestSearchErrorsAndHandling(t *testing.T) {
	t.Parallel()
	srv, _ := searchServer(t, admin)
	strict := []string{"Prefer", "handling=strict"}
	for _, c := range []struct {
		url    string
		status int
	}{
		{"/fhir/r4/Nothing?_count=1", 404},
		{"/fhir/r4/Observation?date=yesterday", 400},
		{"/fhir/r4/Observation?_count=-1", 400},
		{"/fhir/r4/Observation?_sort=status", 400},
		{"/fhir/r4/Observation?_include=Observation:nothing", 400},
		{"/fhir/r4/Observation?_cursor=garbage", 400},
	} {
		if resp, body, _ := fetch(t, srv, c.url); resp.StatusCode != c.status {
			t.Errorf("%s: %d, want %d: %s", c.url, resp.StatusCode, c.status, body)
		}
	}
	if resp, _, _ := fetch(t, srv, "/fhir/r4/Observation?foo=1", strict...); resp.StatusCode != 400 {
		t.Errorf("unknown parameter, strict: %d, want 400", resp.StatusCode)
	}
	resp, body, b := fetch(t, srv, "/fhir/r4/Observation?foo=1&_count=1")
	if resp.StatusCode != 200 || len(b.refs("outcome")) != 1 || strings.Contains(b.link("self"), "foo") {
		t.Errorf("unknown parameter, lenient: %d: %s", resp.StatusCode, body)
	}
	fhirvalid.New(t).Check(t, body)
}

// TestCapabilityStatement checks that every advertised search parameter,
// include and revinclude works in strict mode, and that the statement is
// valid FHIR.
func TestCapabilityStatement(t *testing.T) {
	t.Parallel()
	srv, _ := searchServer(t, admin)
	resp, body, _ := fetch(t, srv, "/fhir/r4/metadata")
	if resp.StatusCode != 200 {
		t.Fatalf("metadata: %d", resp.StatusCode)
	}
	fhirvalid.New(t).Check(t, body)
	var cs struct {
		Rest []struct {
			Security struct {
				Service   []struct{ Coding []struct{ Code string } }
				Extension []struct {
					Extension []struct{ URL, ValueURI string }
				}
			}
			Resource []struct {
				Type                            string
				SearchInclude, SearchRevInclude []string
				SearchParam                     []struct{ Name, Type string }
			}
		}
	}
	if err := json.Unmarshal(body, &cs); err != nil {
		t.Fatal(err)
	}
	sec := cs.Rest[0].Security
	if sec.Service[0].Coding[0].Code != "SMART-on-FHIR" || !strings.HasSuffix(sec.Extension[0].Extension[0].ValueURI, "/auth/token") {
		t.Fatalf("security: %+v", sec)
	}
	sample := map[string]string{"token": "x", "reference": "Patient/x", "date": "ge2026-01-01"}
	strict := []string{"Prefer", "handling=strict"}
	for _, r := range cs.Rest[0].Resource {
		for _, p := range r.SearchParam {
			u := "/fhir/r4/" + r.Type + "?" + url.Values{p.Name: {sample[p.Type]}}.Encode()
			if p.Name == "_id" {
				u = "/fhir/r4/" + r.Type + "?_id=x"
			}
			resp, body, _ := fetch(t, srv, u, strict...)
			if resp.StatusCode == 400 && p.Type == "reference" { // a parameter limited to one target type
				resp, body, _ = fetch(t, srv, "/fhir/r4/"+r.Type+"?"+p.Name+"=x", strict...)
			}
			if resp.StatusCode != 200 {
				t.Errorf("%s: %d: %s", u, resp.StatusCode, body)
			}
		}
		for _, inc := range r.SearchInclude {
			if resp, body, _ := fetch(t, srv, "/fhir/r4/"+r.Type+"?_include="+inc, strict...); resp.StatusCode != 200 {
				t.Errorf("_include=%s: %d: %s", inc, resp.StatusCode, body)
			}
		}
		for _, inc := range r.SearchRevInclude {
			if resp, body, _ := fetch(t, srv, "/fhir/r4/"+r.Type+"?_revinclude="+inc, strict...); resp.StatusCode != 200 {
				t.Errorf("_revinclude=%s: %d: %s", inc, resp.StatusCode, body)
			}
		}
		if resp, _, _ := fetch(t, srv, "/fhir/r4/"+r.Type+"?not-advertised=1", strict...); resp.StatusCode != 400 {
			t.Errorf("%s?not-advertised=1 strict: %d, want 400", r.Type, resp.StatusCode)
		}
	}
}

func TestReadHistoryEverything(t *testing.T) {
	t.Parallel()
	srv, _ := searchServer(t, admin)
	v := fhirvalid.New(t)
	pat := firstPatient(t, srv)
	resp, _, _ := fetch(t, srv, "/fhir/r4/Patient/"+pat)
	etag := resp.Header.Get("ETag")
	if resp, _, _ := fetch(t, srv, "/fhir/r4/Patient/"+pat, "If-None-Match", etag); resp.StatusCode != 304 {
		t.Errorf("If-None-Match %s: %d, want 304", etag, resp.StatusCode)
	}
	if resp, _, _ := fetch(t, srv, "/fhir/r4/Patient/"+pat, "If-Modified-Since", resp.Header.Get("Last-Modified")); resp.StatusCode != 304 {
		t.Errorf("If-Modified-Since: %d, want 304", resp.StatusCode)
	}
	for _, u := range []string{"/fhir/r4/Patient/" + pat + "/_history", "/fhir/r4/Observation/_history?_count=3",
		"/fhir/r4/Patient/" + pat + "/$everything?_count=5", "/fhir/r4/Patient/" + pat + "/$everything?_type=Observation,Encounter"} {
		resp, body, b := fetch(t, srv, u)
		if resp.StatusCode != 200 || len(b.Entry) == 0 {
			t.Fatalf("%s: %d: %s", u, resp.StatusCode, body)
		}
		v.Check(t, body)
	}
	if resp, _, _ := fetch(t, srv, "/fhir/r4/Patient/nobody/_history"); resp.StatusCode != 404 {
		t.Errorf("history of an unknown patient: %d", resp.StatusCode)
	}
}

// TestAccessFilters checks that a partner serving no organization of the
// patient sees nothing of it on any path, and shared resources still.
func TestAccessFilters(t *testing.T) {
	t.Parallel()
	stranger := auth.Principal{ClientID: "p", Kind: auth.KindPartner, Scopes: []string{"system/*.rs"},
		Access: store.Access{Orgs: []string{"org-nobody"}, Now: time.Now()}}
	srv, st := searchServer(t, stranger)
	vs, err := st.Search(context.Background(), store.SearchRequest{Query: mustParse(t, "Patient"), Access: store.Access{All: true}})
	if err != nil || len(vs.Hits) == 0 {
		t.Fatalf("no patient: %v", err)
	}
	pat := vs.Hits[0].ID
	for _, u := range []string{"/fhir/r4/Patient/" + pat, "/fhir/r4/Patient/" + pat + "/_history/1",
		"/fhir/r4/Patient/" + pat + "/_history", "/fhir/r4/Patient/" + pat + "/$everything"} {
		if resp, _, _ := fetch(t, srv, u); resp.StatusCode != 404 {
			t.Errorf("%s: %d, want 404", u, resp.StatusCode)
		}
	}
	for _, u := range []string{"/fhir/r4/Observation", "/fhir/r4/Patient", "/fhir/r4/Observation/_history",
		"/fhir/r4/CarePlan?_include=CarePlan:subject"} {
		if _, body, b := fetch(t, srv, u); len(b.refs("match")) != 0 && !strings.HasPrefix(u, "/fhir/r4/Practitioner") {
			t.Errorf("%s: stranger sees %s", u, body)
		}
	}
	if _, _, b := fetch(t, srv, "/fhir/r4/Practitioner"); len(b.refs("match")) == 0 {
		t.Error("shared Practitioners are hidden")
	}
}

func mustParse(t *testing.T, typ string) search.Query {
	t.Helper()
	q, err := search.New().Parse(typ, url.Values{}, true)
	if err != nil {
		t.Fatal(err)
	}
	return q
}
