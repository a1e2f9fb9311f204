package main

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/kapgw/kapgw/internal/kap/kaptest"
)

// TestAdminExchangesSeeARequestAtOnce: right after a partner's read, with
// no wait and no AuditEvent search in between, an admin finds the read's
// exchange row by its trace id, whether it still lingers in the queue
// (AuditEvents off) or in the AuditEvent journal (AuditEvents on).
func TestAdminExchangesSeeARequestAtOnce(t *testing.T) {
	t.Parallel()
	for name, flags := range map[string][]string{"audit on": nil, "audit off": {"--audit=false"}} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			g := startGateway(t, append([]string{"--data-dir", t.TempDir()}, flags...)...)
			g.token = g.login(t, "clinic-platform", "clinic", clinicScopes, nil)
			partner := g.as(g.login(t, "ehr-a", "partner", []string{"system/*.rs"}, []string{"org-thr-12"}))
			admin := g.as(g.login(t, "admin-1", "admin", []string{"system/AuditEvent.rs"}, nil))

			doc := recent(kaptest.Example(kaptest.HomeDosing), time.Now())
			resp, body := g.do(t, http.MethodPut, "/kap/v1/episodes/"+gjson.GetBytes(doc, "id").String(), "application/json", doc)
			if resp.StatusCode != http.StatusCreated {
				t.Fatalf("PUT: %d %s", resp.StatusCode, body)
			}
			var patient string
			for _, r := range decodePut(t, body).Resources {
				if strings.HasPrefix(r.Reference, "Patient/") {
					patient = r.Reference
				}
			}
			resp, body = partner.do(t, http.MethodGet, "/fhir/r4/"+patient, "", nil)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("partner read of %s: %d %s", patient, resp.StatusCode, body)
			}
			parts := strings.Split(resp.Header.Get("traceparent"), "-")
			if len(parts) != 4 {
				t.Fatal("no traceparent on the read's response")
			}
			resp, body = admin.do(t, http.MethodGet, "/admin/v1/exchanges?trace="+parts[1], "", nil)
			if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"pull"`) || !strings.Contains(string(body), patient) {
				t.Fatalf("the read's exchange row is not listed at once: %d %s", resp.StatusCode, body)
			}
		})
	}
}
