package fhir_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/kapgw/kapgw/fhir"
	"github.com/kapgw/kapgw/internal/audit"
	"github.com/kapgw/kapgw/internal/auth"
	"github.com/kapgw/kapgw/internal/fhirvalid"
	"github.com/kapgw/kapgw/internal/intake"
	"github.com/kapgw/kapgw/internal/kap/kaptest"
	"github.com/kapgw/kapgw/internal/store"
)

// auditServer starts the API with AuditEvents written by w, seeds one
// episode and returns its Patient id and an admin token.
func auditServer(t *testing.T, w fhir.AuditWriter) (srv *httptest.Server, st *store.Store, patient, adminTok string) {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, store.Config{DataDir: t.TempDir()}, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if w == nil {
		aw := audit.NewWriter(st, time.Now, audit.Options{})
		t.Cleanup(aw.Close)
		w = aw
	}
	srv = startAuthed(t, st, fhir.Options{Log: slog.New(slog.NewJSONHandler(io.Discard, nil)), Intake: intake.New(st, time.Now, ""),
		Reader: st, Ready: st, MaxBodyBytes: maxBody, Now: time.Now, Audit: fhir.Audit{Writer: w, Log: st}})
	doc := kaptest.Example(kaptest.HomeDosing)
	var ep struct{ ID string }
	_ = json.Unmarshal(doc, &ep)
	if resp, _ := send(t, srv, http.MethodPut, "/kap/v1/episodes/"+ep.ID, "application/json", doc); resp.StatusCode != http.StatusCreated {
		t.Fatalf("seed: %d", resp.StatusCode)
	}
	vs, err := st.EpisodeResources(ctx, ep.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range vs {
		if v.Type == "Patient" {
			patient = v.ID
		}
	}
	key := registerClient(t, st, "admin-1", auth.KindAdmin, []string{"system/AuditEvent.rs"}, nil, 1000)
	return srv, st, patient, token(t, srv, "admin-1", key, "system/AuditEvent.rs")
}

func TestEveryPatientAccessIsAudited(t *testing.T) {
	t.Parallel()
	srv, st, patient, adminTok := auditServer(t, nil)
	ctx := context.Background()
	for _, path := range []string{
		"/fhir/r4/Patient/" + patient,
		"/fhir/r4/Patient/" + patient + "/_history/1",
		"/fhir/r4/Observation?patient=Patient/" + patient,
		"/fhir/r4/Patient/" + patient + "/_history",
		"/fhir/r4/Patient/" + patient + "/$everything",
		"/fhir/r4/Patient/missing-one",
	} {
		before, _ := st.AuditEvents(ctx, store.AuditFilter{Limit: 1000})
		resp, _ := send(t, srv, http.MethodGet, path, "", nil)
		after, _ := st.AuditEvents(ctx, store.AuditFilter{Limit: 1000})
		if len(after) <= len(before) {
			t.Errorf("GET %s (%d): no AuditEvent", path, resp.StatusCode)
			continue
		}
		got := after[0]
		wantOutcome := "0"
		if resp.StatusCode >= 400 {
			wantOutcome = "4"
		}
		if got.ClientID != "clinic-platform" || got.Outcome != wantOutcome || (resp.StatusCode < 400 && got.PatientID != patient) {
			t.Errorf("GET %s (%d): AuditEvent %+v", path, resp.StatusCode, got)
		}
	}

	// Only admins with system/AuditEvent.rs search them.
	if resp, _ := send(t, srv, http.MethodGet, "/fhir/r4/AuditEvent?patient="+patient, "", nil); resp.StatusCode != http.StatusForbidden {
		t.Errorf("clinic searching AuditEvents: %d, want 403", resp.StatusCode)
	}
	resp, body := adminGet(t, srv, adminTok, "/fhir/r4/AuditEvent?patient="+patient+"&_count=2")
	var b struct {
		Total *int
		Link  []struct{ Relation, URL string }
		Entry []struct{ Resource json.RawMessage }
	}
	if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &b) != nil || len(b.Entry) != 2 || len(b.Link) != 2 {
		t.Fatalf("admin AuditEvent search: %d %s", resp.StatusCode, body)
	}
	fhirvalid.New(t).Check(t, body, b.Entry[0].Resource)
	next := strings.TrimPrefix(b.Link[1].URL, srv.URL)
	if resp, body := adminGet(t, srv, adminTok, next); resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"AuditEvent"`) {
		t.Errorf("next page: %d", resp.StatusCode)
	}
	var id struct{ ID string }
	_ = json.Unmarshal(b.Entry[0].Resource, &id)
	if resp, _ := adminGet(t, srv, adminTok, "/fhir/r4/AuditEvent/"+id.ID); resp.StatusCode != http.StatusOK {
		t.Errorf("AuditEvent read: %d", resp.StatusCode)
	}
	if resp, _ := adminGet(t, srv, adminTok, "/fhir/r4/AuditEvent?name=x"); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("unsupported parameter: %d, want 400", resp.StatusCode)
	}
}

// failingAudit cannot write anything.
type failingAudit struct{}

func (failingAudit) Record(context.Context, audit.Access) error { return errors.New("database down") }

func (failingAudit) Begin() func() { return func() {} }

func TestAccessIsRefusedWhenItCannotBeAudited(t *testing.T) {
	t.Parallel()
	srv, _, patient, _ := auditServer(t, failingAudit{})
	resp, body := send(t, srv, http.MethodGet, "/fhir/r4/Patient/"+patient, "", nil)
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("status %d, want 503", resp.StatusCode)
	}
	if oo := decodeOutcome(t, resp, body); oo.Issue[0].Code != "transient" || strings.Contains(string(body), patient) || resp.Header.Get("ETag") != "" {
		t.Errorf("refusal leaks or is wrong: %s", body)
	}
}

// TestPartnerWildcardCannotReadAuditEvents: a partner allowed system/*.rs,
// even one whose registry entry names system/AuditEvent.rs outright, gets
// no AuditEvent scope from the token endpoint, and its token neither
// searches nor reads AuditEvents.
func TestPartnerWildcardCannotReadAuditEvents(t *testing.T) {
	t.Parallel()
	srv, st, patient, adminTok := auditServer(t, nil)
	if resp, _ := send(t, srv, http.MethodGet, "/fhir/r4/Patient/"+patient, "", nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("seed read: %d", resp.StatusCode)
	}
	_, body := adminGet(t, srv, adminTok, "/fhir/r4/AuditEvent?_count=1")
	var b struct {
		Entry []struct{ Resource struct{ ID string } }
	}
	if json.Unmarshal(body, &b) != nil || len(b.Entry) != 1 {
		t.Fatalf("no AuditEvent to find: %s", body)
	}
	key := registerClient(t, st, "ehr-star", auth.KindPartner, []string{"system/*.rs", "system/AuditEvent.rs"}, nil, 1000)
	if status, out := requestToken(t, srv, "ehr-star", key, "system/AuditEvent.rs"); status != http.StatusBadRequest || out.Error != "invalid_scope" {
		t.Errorf("partner asking for system/AuditEvent.rs: %d %q %q, want 400 invalid_scope", status, out.Error, out.Scope)
	}
	status, out := requestToken(t, srv, "ehr-star", key, "system/*.rs system/AuditEvent.rs system/AuditEvent.read")
	if status != http.StatusOK || out.Scope != "system/*.rs" {
		t.Fatalf("partner token: %d, scope %q, want only system/*.rs", status, out.Scope)
	}
	for _, path := range []string{"/fhir/r4/AuditEvent", "/fhir/r4/AuditEvent?patient=" + patient, "/fhir/r4/AuditEvent/" + b.Entry[0].Resource.ID} {
		if resp, body := adminGet(t, srv, out.AccessToken, path); resp.StatusCode != http.StatusForbidden || strings.Contains(string(body), `"AuditEvent"`) {
			t.Errorf("partner GET %s: %d, want 403", path, resp.StatusCode)
		}
	}
}

// TestIntakeReadsAreAudited: the intake API's GETs return a whole episode,
// so each writes an AuditEvent naming its patient and resources, and is
// refused when that cannot be written; the PUT is not a read.
func TestIntakeReadsAreAudited(t *testing.T) {
	t.Parallel()
	srv, st, patient, _ := auditServer(t, nil)
	ctx := context.Background()
	var ep struct{ ID string }
	_ = json.Unmarshal(kaptest.Example(kaptest.HomeDosing), &ep)
	for _, path := range []string{"/kap/v1/episodes/" + ep.ID, "/kap/v1/episodes/" + ep.ID + "/fhir"} {
		before, _ := st.AuditEvents(ctx, store.AuditFilter{Limit: 1000})
		resp, _ := send(t, srv, http.MethodGet, path, "", nil)
		after, _ := st.AuditEvents(ctx, store.AuditFilter{Limit: 1000})
		if resp.StatusCode != http.StatusOK || len(after) != len(before)+1 {
			t.Errorf("GET %s (%d): %d AuditEvents written, want 1", path, resp.StatusCode, len(after)-len(before))
			continue
		}
		got := after[0]
		if got.PatientID != patient || got.ClientID != "clinic-platform" || got.Action != "R" || got.Outcome != "0" ||
			!strings.Contains(string(got.Body), `"reference":"Patient/`+patient+`"`) || !strings.Contains(string(got.Body), `"reference":"CarePlan/`) {
			t.Errorf("GET %s: AuditEvent %s %s %s %s: %s", path, got.PatientID, got.ClientID, got.Action, got.Outcome, got.Body)
		}
		fhirvalid.New(t).Check(t, got.Body)
	}
	before, _ := st.AuditEvents(ctx, store.AuditFilter{Limit: 1000})
	if resp, _ := send(t, srv, http.MethodPut, "/kap/v1/episodes/"+ep.ID, "application/json", kaptest.Example(kaptest.HomeDosing)); resp.StatusCode != http.StatusOK {
		t.Fatalf("PUT again: %d", resp.StatusCode)
	}
	if after, _ := st.AuditEvents(ctx, store.AuditFilter{Limit: 1000}); len(after) != len(before) {
		t.Errorf("the intake PUT wrote %d AuditEvents, want none", len(after)-len(before))
	}

	failing, _, _, _ := auditServer(t, failingAudit{})
	for _, path := range []string{"/kap/v1/episodes/" + ep.ID, "/kap/v1/episodes/" + ep.ID + "/fhir"} {
		if resp, body := send(t, failing, http.MethodGet, path, "", nil); resp.StatusCode != http.StatusServiceUnavailable || strings.Contains(string(body), patient) {
			t.Errorf("GET %s without an audit record: %d, want 503 and no patient data", path, resp.StatusCode)
		}
	}
}
