package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/kapgw/kapgw/internal/kap/kaptest"
	"github.com/kapgw/kapgw/pharmacy"
	"github.com/kapgw/kapgw/pharmacy/sim"
)

// TestExchangeLogFollowsAPrescription runs kapgw serve against the
// simulated pharmacy and answers "what happened to this request" from the
// intake's trace id alone: the intake row and the NewRx delivery (worked
// later by a River job) share it, and a partner's read of the dispense is
// both an exchange row and an AuditEvent an admin can search.
func TestExchangeLogFollowsAPrescription(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	pharmacyURL, makeSim := startPharmacy(t, dir)
	g := startGateway(t, "--data-dir", dir, "--pharmacy-url", pharmacyURL)
	ph := makeSim(g.base + "/pharmacy/v1/callbacks")
	g.token = g.login(t, "clinic-platform", "clinic", clinicScopes, nil)
	partner := g.as(g.login(t, "ehr-a", "partner", []string{"system/*.rs"}, []string{"org-thr-12"}))
	admin := g.as(g.login(t, "admin-1", "admin", []string{"system/AuditEvent.rs"}, nil))

	doc := recent(kaptest.Example(kaptest.HomeDosing), time.Now())
	id := gjson.GetBytes(doc, "id").String()
	resp, body := g.do(t, http.MethodPut, "/kap/v1/episodes/"+id, "application/json", doc)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("PUT: %d %s", resp.StatusCode, body)
	}
	parts := strings.Split(resp.Header.Get("traceparent"), "-")
	if len(parts) != 4 {
		t.Fatalf("no traceparent on the PUT response")
	}
	trace := parts[1]
	order := waitReceived(t, ph, 1)[0].PrescriberOrderNumber

	type row struct {
		Kind, Direction, Status, EpisodeID, PartnerID, TraceID string
		Attempt                                                int
	}
	// kapgw exchanges reads the database from its own process: the intake
	// row reaches it after the queue's linger and a journal ingest
	// (docs/audit.md, "Read your writes"), and the pharmacy worker may
	// write its rows sooner, so wait until both are there.
	intakeRow := func(r row) bool {
		return r.Kind == "intake" && r.Direction == "in" && r.EpisodeID == id && r.PartnerID == "clinic-platform"
	}
	deliveryRow := func(r row) bool {
		return r.Kind == "pharmacy" && r.Direction == "out" && r.Status == pharmacy.StepAccepted && r.Attempt == 1
	}
	var rows []row
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		rows = nil
		for _, line := range strings.Split(strings.TrimSpace(runOut(t, "exchanges", "--data-dir", dir, "--trace", trace, "--json")), "\n") {
			var r row
			if json.Unmarshal([]byte(line), &r) == nil {
				rows = append(rows, r)
			}
		}
		if has(rows, intakeRow) && has(rows, deliveryRow) {
			break
		}
	}
	if !has(rows, intakeRow) {
		t.Errorf("no intake row in trace %s: %+v", trace, rows)
	}
	if !has(rows, deliveryRow) {
		t.Errorf("the NewRx delivery is not in the intake's trace %s: %+v", trace, rows)
	}

	var status int
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline) && status != http.StatusOK; time.Sleep(50 * time.Millisecond) {
		resp, _ := partner.do(t, http.MethodGet, "/fhir/r4/MedicationDispense/"+pharmacy.DispenseID(order), "", nil)
		status = resp.StatusCode
	}
	if status != http.StatusOK {
		t.Fatalf("partner read of the dispense: %d", status)
	}
	resp, body = admin.do(t, http.MethodGet, "/fhir/r4/AuditEvent?agent=ehr-a", "", nil)
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "MedicationDispense/"+pharmacy.DispenseID(order)) {
		t.Errorf("no AuditEvent of the partner's read: %d %s", resp.StatusCode, body)
	}
	resp, body = admin.do(t, http.MethodGet, "/admin/v1/exchanges?partner=ehr-a&status=ok", "", nil)
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"pull"`) {
		t.Errorf("no pull row for the partner: %d %s", resp.StatusCode, body)
	}
	checkPharmacyMessages(t, g, ph, dir, doc, trace)
}

// checkPharmacyMessages cancels the prescription and checks that every
// message to and from the pharmacy is in the exchange log with a trace id:
// NewRx and CancelRx out (in the trace of the PUT that caused each, found
// by episode), and each fill callback in, both as the HTTP request and as
// the step it applied.
func checkPharmacyMessages(t *testing.T, g *gateway, ph *sim.Sim, dir string, doc []byte, newRxTrace string) {
	t.Helper()
	id := gjson.GetBytes(doc, "id").String()
	cancelled := bytes.Replace(doc, []byte("\"status\": \"active\",\n      \"writtenAt\""), []byte("\"status\": \"cancelled\",\n      \"writtenAt\""), 1)
	resp, body := g.do(t, http.MethodPut, "/kap/v1/episodes/"+id, "application/json", cancelled)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("PUT cancelled: %d %s", resp.StatusCode, body)
	}
	cancelTrace := strings.Split(resp.Header.Get("traceparent"), "-")[1]
	if got := waitReceived(t, ph, 2); got[1].Kind != "CancelRx" {
		t.Fatalf("second message %+v, want CancelRx", got[1])
	}
	type row struct {
		Kind, Direction, Status, Operation, EpisodeID, PartnerID, TraceID string
	}
	rows := func(args ...string) []row {
		var out []row
		for _, line := range strings.Split(strings.TrimSpace(runOut(t, append([]string{"exchanges", "--data-dir", dir, "--json"}, args...)...)), "\n") {
			var r row
			if json.Unmarshal([]byte(line), &r) == nil {
				out = append(out, r)
			}
		}
		return out
	}
	sent := func(message, trace string) func(row) bool {
		return func(r row) bool {
			return r.Kind == "pharmacy" && r.Direction == "out" && strings.HasPrefix(r.Operation, message+" ") &&
				r.Status == pharmacy.StepAccepted && r.TraceID == trace && r.PartnerID == "pharmacy"
		}
	}
	var ep []row
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if ep = rows("--episode", id); has(ep, sent("CancelRx", cancelTrace)) {
			break
		}
	}
	if !has(ep, sent("NewRx", newRxTrace)) || !has(ep, sent("CancelRx", cancelTrace)) {
		t.Errorf("episode %s: NewRx (trace %s) and CancelRx (trace %s) not both accepted in the log: %+v", id, newRxTrace, cancelTrace, ep)
	}
	in := rows("--partner", "pharmacy")
	for _, step := range []string{pharmacy.StepDispensed, pharmacy.StepShipped, pharmacy.StepDelivered} {
		if !has(in, func(r row) bool { return r.Direction == "in" && r.Status == step && r.TraceID != "" }) {
			t.Errorf("no %s callback step with a trace id: %+v", step, in)
		}
	}
	var callbacks int
	for _, r := range in {
		if r.Operation == "POST /pharmacy/v1/callbacks" && r.TraceID != "" {
			callbacks++
		}
	}
	if callbacks < 3 {
		t.Errorf("%d callback requests with a trace id in the log, want at least 3: %+v", callbacks, in)
	}
}

func has[T any](xs []T, f func(T) bool) bool {
	for _, x := range xs {
		if f(x) {
			return true
		}
	}
	return false
}
