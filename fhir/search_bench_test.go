package fhir_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"testing"

	"github.com/kapgw/kapgw/internal/auth"
	"github.com/kapgw/kapgw/internal/store"
	"github.com/kapgw/kapgw/mappers"
)

// BenchmarkSearch measures GET Observation?patient=X&code=system|C&_count=20
// through the full HTTP stack on SQLite, one client at a time: the patient
// of one seeded episode has 2,000 more Observations over 10 codes, so 200
// match and each page returns 20 (about 11 kB). Every answer must be 200
// with 20 entries.
func BenchmarkSearch(b *testing.B) {
	srv, st := benchServer(b, "sqlite")
	seedRead(b, srv, st)
	pid := mappers.ID("Patient", "pt-b0000001")
	var rs []store.Resource
	for i := range 2000 {
		oid := fmt.Sprintf("obs-bench-%05d", i)
		rs = append(rs, store.Resource{Type: "Observation", ID: oid, PatientID: pid, Body: fmt.Appendf(nil,
			`{"resourceType":"Observation","id":%q,"status":"final","code":{"coding":[{"system":"http://loinc.org","code":"c%d"}]},`+
				`"subject":{"reference":"Patient/%s"},"effectiveDateTime":"2026-04-03T10:00:00Z","valueInteger":%d}`, oid, i%10, pid, i%27)})
	}
	if _, err := st.PutResources(context.Background(), rs); err != nil {
		b.Fatal(err)
	}
	u := srv.URL + "/fhir/r4/Observation?" + url.Values{"patient": {"Patient/" + pid}, "code": {"http://loinc.org|c3"}, "_count": {"20"}}.Encode()
	key := registerClient(b, st, "ehr-bench", auth.KindPartner, []string{"system/*.rs"}, []string{"org-med-1"}, 1_000_000)
	partner := &http.Client{Transport: &bearerTransport{base: http.DefaultTransport, token: token(b, srv, "ehr-bench", key, "system/*.rs")}}
	for _, c := range []struct {
		name   string
		client *http.Client
	}{{"clinic", srv.Client()}, {"partner", partner}} {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				resp, err := c.client.Get(u)
				if err != nil {
					b.Fatal(err)
				}
				got, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK || bytes.Count(got, []byte(`"fullUrl"`)) != 20 {
					b.Fatalf("status %d, %d entries", resp.StatusCode, bytes.Count(got, []byte(`"fullUrl"`)))
				}
			}
		})
	}
}
