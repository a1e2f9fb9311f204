package main

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/kapgw/kapgw/internal/kap/kaptest"
	"github.com/kapgw/kapgw/pharmacy"
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
	var rows []row
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		rows = nil
		for _, line := range strings.Split(strings.TrimSpace(runOut(t, "exchanges", "--data-dir", dir, "--trace", trace, "--json")), "\n") {
			var r row
			if json.Unmarshal([]byte(line), &r) == nil {
				rows = append(rows, r)
			}
		}
		if has(rows, func(r row) bool { return r.Kind == "pharmacy" && r.Status == pharmacy.StepAccepted }) {
			break
		}
	}
	if !has(rows, func(r row) bool {
		return r.Kind == "intake" && r.Direction == "in" && r.EpisodeID == id && r.PartnerID == "clinic-platform"
	}) {
		t.Errorf("no intake row in trace %s: %+v", trace, rows)
	}
	if !has(rows, func(r row) bool {
		return r.Kind == "pharmacy" && r.Direction == "out" && r.Status == pharmacy.StepAccepted && r.Attempt == 1
	}) {
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
}

func has[T any](xs []T, f func(T) bool) bool {
	for _, x := range xs {
		if f(x) {
			return true
		}
	}
	return false
}
