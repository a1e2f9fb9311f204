package fhir_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/kapgw/kapgw/fhir"
	"github.com/kapgw/kapgw/internal/fhirvalid"
	"github.com/kapgw/kapgw/internal/intake"
	"github.com/kapgw/kapgw/internal/kap/kaptest"
	"github.com/kapgw/kapgw/internal/store"
)

const maxBody = 256 << 10

// newServer starts the whole HTTP API on loopback over a real SQLite store.
func newServer(t *testing.T) (*httptest.Server, *store.Store) {
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
	srv := startAuthed(t, st, fhir.Options{
		Log:          slog.New(slog.NewJSONHandler(io.Discard, nil)),
		Intake:       intake.New(st, time.Now, ""),
		Reader:       st,
		Ready:        st,
		MaxBodyBytes: maxBody,
		Now:          time.Now,
	})
	return srv, st
}

type outcome struct {
	ResourceType string
	Issue        []struct {
		Severity, Code, Diagnostics string
		Expression                  []string
	}
}

func send(t *testing.T, srv *httptest.Server, method, path, contentType string, body []byte) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

// decodeOutcome checks that a body is an OperationOutcome and returns it.
func decodeOutcome(t *testing.T, resp *http.Response, body []byte) outcome {
	t.Helper()
	var oo outcome
	if err := json.Unmarshal(body, &oo); err != nil || oo.ResourceType != "OperationOutcome" || len(oo.Issue) == 0 {
		t.Fatalf("status %d: body is not an OperationOutcome with issues: %.300s", resp.StatusCode, body)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/fhir+json") {
		t.Errorf("OperationOutcome content type %q", ct)
	}
	return oo
}

func hasExpression(oo outcome, expr string) bool {
	for _, is := range oo.Issue {
		for _, e := range is.Expression {
			if e == expr {
				return true
			}
		}
		if expr == "" && len(is.Expression) == 0 {
			return true
		}
	}
	return false
}

// snapshot is what the store holds for an episode: its document and the
// version of every resource.
func snapshot(t *testing.T, st *store.Store, id string) string {
	t.Helper()
	ctx := context.Background()
	doc, err := st.Episode(ctx, id)
	if err != nil {
		t.Fatalf("load episode: %v", err)
	}
	vs, err := st.EpisodeResources(ctx, id)
	if err != nil {
		t.Fatalf("load resources: %v", err)
	}
	var b strings.Builder
	b.Write(doc)
	for _, v := range vs {
		fmt.Fprintf(&b, "|%s/%s/%d", v.Type, v.ID, v.VersionID)
	}
	return b.String()
}

func TestBadDocumentsAreRefusedAndStoreNothing(t *testing.T) {
	t.Parallel()
	srv, st := newServer(t)
	good := kaptest.Example("home-dosing")
	var head struct{ ID string }
	if err := json.Unmarshal(good, &head); err != nil {
		t.Fatal(err)
	}
	resp, body := send(t, srv, http.MethodPut, "/kap/v1/episodes/"+head.ID, "application/json", good)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("valid document: status %d: %s", resp.StatusCode, body)
	}
	before := snapshot(t, st, head.ID)

	bad := kaptest.BadDocuments()
	if len(bad) < 40 {
		t.Fatalf("only %d bad documents; the issue asks for at least 40", len(bad))
	}
	for _, bd := range bad {
		t.Run(bd.Name, func(t *testing.T) {
			for _, path := range []string{"/kap/v1/episodes/" + head.ID, "/kap/v1/episodes/$validate"} {
				method := http.MethodPut
				if strings.HasSuffix(path, "$validate") {
					method = http.MethodPost
				}
				resp, body := send(t, srv, method, path, "application/json", bd.Body)
				if resp.StatusCode != bd.Status {
					t.Errorf("%s: status %d, want %d: %.300s", method, resp.StatusCode, bd.Status, body)
					continue
				}
				if oo := decodeOutcome(t, resp, body); !hasExpression(oo, bd.Expression) {
					t.Errorf("%s: no issue with expression %q in %.400s", method, bd.Expression, body)
				}
			}
			if after := snapshot(t, st, head.ID); after != before {
				t.Error("a refused document changed the store")
			}
		})
	}
}

func TestRequestErrorsAreOperationOutcomes(t *testing.T) {
	t.Parallel()
	srv, _ := newServer(t)
	good := kaptest.Example("home-dosing")
	var head struct{ ID string }
	if err := json.Unmarshal(good, &head); err != nil {
		t.Fatal(err)
	}
	huge := append(bytes.Repeat([]byte(" "), maxBody+1), good...)
	cases := []struct {
		name, method, path, contentType string
		body                            []byte
		status                          int
		code, expression                string
	}{
		{"wrong content type", "PUT", "/kap/v1/episodes/" + head.ID, "text/plain", good, 415, "not-supported", ""},
		{"no content type", "PUT", "/kap/v1/episodes/" + head.ID, "", good, 415, "not-supported", ""},
		{"body over limit", "PUT", "/kap/v1/episodes/" + head.ID, "application/json", huge, 413, "too-long", ""},
		{"id differs from path", "PUT", "/kap/v1/episodes/other-id", "application/json", good, 400, "invalid", "id"},
		{"invalid path id", "PUT", "/kap/v1/episodes/bad%20id", "application/json", good, 400, "invalid", ""},
		{"unknown episode", "GET", "/kap/v1/episodes/nope", "", nil, 404, "not-found", ""},
		{"unknown episode bundle", "GET", "/kap/v1/episodes/nope/fhir", "", nil, 404, "not-found", ""},
		{"unknown resource type", "GET", "/fhir/r4/Spaceship/x", "", nil, 404, "not-supported", ""},
		{"unknown resource", "GET", "/fhir/r4/Patient/does-not-exist", "", nil, 404, "not-found", ""},
		{"unknown version", "GET", "/fhir/r4/Patient/does-not-exist/_history/1", "", nil, 404, "not-found", ""},
		{"bad version", "GET", "/fhir/r4/Patient/x/_history/zero", "", nil, 400, "invalid", ""},
		{"unknown route", "GET", "/nowhere", "", nil, 404, "not-found", ""},
		{"wrong method", "DELETE", "/kap/v1/episodes/" + head.ID, "", nil, 405, "not-supported", ""},
	}
	for _, tc := range cases {
		resp, body := send(t, srv, tc.method, tc.path, tc.contentType, tc.body)
		if resp.StatusCode != tc.status {
			t.Errorf("%s: status %d, want %d: %.300s", tc.name, resp.StatusCode, tc.status, body)
			continue
		}
		oo := decodeOutcome(t, resp, body)
		if oo.Issue[0].Code != tc.code {
			t.Errorf("%s: issue code %q, want %q", tc.name, oo.Issue[0].Code, tc.code)
		}
		if tc.expression != "" && !hasExpression(oo, tc.expression) {
			t.Errorf("%s: no issue at %q", tc.name, tc.expression)
		}
		if resp.Header.Get("Cache-Control") != "no-store" || resp.Header.Get("X-Request-Id") == "" {
			t.Errorf("%s: missing Cache-Control no-store or X-Request-Id", tc.name)
		}
	}
}

func TestValidateIsADryRun(t *testing.T) {
	t.Parallel()
	srv, st := newServer(t)
	doc := kaptest.Example("four-dosings")
	resp, body := send(t, srv, http.MethodPost, "/kap/v1/episodes/$validate", "application/json", doc)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %.300s", resp.StatusCode, body)
	}
	var b struct {
		ResourceType, Type string
		Entry              []struct{ Resource struct{ ResourceType string } }
	}
	if err := json.Unmarshal(body, &b); err != nil {
		t.Fatal(err)
	}
	if b.Type != "collection" || len(b.Entry) < 20 || b.Entry[0].Resource.ResourceType != "OperationOutcome" {
		t.Fatalf("want a collection Bundle led by an OperationOutcome, got %s with %d entries", b.Type, len(b.Entry))
	}
	fhirvalid.New(t).Check(t, body)
	var head struct{ ID string }
	_ = json.Unmarshal(doc, &head)
	if _, err := st.Episode(context.Background(), head.ID); err == nil {
		t.Error("$validate stored the episode")
	}
}

func TestOpenAPIAndHealth(t *testing.T) {
	t.Parallel()
	srv, _ := newServer(t)
	for _, path := range []string{"/kap/v1/openapi.json", "/healthz", "/readyz"} {
		resp, body := send(t, srv, http.MethodGet, path, "", nil)
		if resp.StatusCode != http.StatusOK || !json.Valid(body) {
			t.Errorf("GET %s: status %d, valid JSON %v", path, resp.StatusCode, json.Valid(body))
		}
	}
	_, body := send(t, srv, http.MethodGet, "/kap/v1/openapi.json", "", nil)
	var doc struct {
		OpenAPI string
		Paths   map[string]any
	}
	_ = json.Unmarshal(body, &doc)
	if !strings.HasPrefix(doc.OpenAPI, "3.1") || doc.Paths["/episodes/{id}"] == nil || doc.Paths["/episodes/$validate"] == nil {
		t.Errorf("openapi.json: version %q, paths %v", doc.OpenAPI, doc.Paths)
	}
}
