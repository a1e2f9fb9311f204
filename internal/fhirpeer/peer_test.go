package fhirpeer

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
)

const txBundle = `{"resourceType":"Bundle","type":"transaction","entry":[
{"fullUrl":"urn:uuid:6f1c3b9e-0000-4000-8000-000000000001","resource":{"resourceType":"Patient","identifier":[{"system":"urn:test:patient","value":"p1"}]},
 "request":{"method":"PUT","url":"Patient?identifier=urn:test:patient|p1"}},
{"resource":{"resourceType":"Observation","status":"final","code":{"text":"x"},"identifier":[{"system":"urn:test:obs","value":"o1"}],
 "subject":{"reference":"urn:uuid:6f1c3b9e-0000-4000-8000-000000000001"}},
 "request":{"method":"PUT","url":"Observation?identifier=urn:test:obs|o1"}}]}`

func post(t *testing.T, base string) (int, error) {
	t.Helper()
	resp, err := http.Post(base, "application/fhir+json", strings.NewReader(txBundle))
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, nil
}

// TestPeerConditionalUpdateAndFaults proves the peer turns replays of a
// conditional-update transaction into updates of one copy, and that each
// fault action does what it says, including a response lost after commit.
func TestPeerConditionalUpdateAndFaults(t *testing.T) {
	t.Parallel()
	p := Start(t)
	f := NewFault(t, p.Base)
	f.Script(Fail500, Throttle429, Unavailable, Drop, LoseResponse)
	want := []int{500, 429, 503}
	for _, w := range want {
		if got, err := post(t, f.Base); err != nil || got != w {
			t.Fatalf("status = %d, %v; want %d", got, err, w)
		}
	}
	for range 2 { // Drop, then LoseResponse (committed at the peer)
		if _, err := post(t, f.Base); err == nil {
			t.Fatal("dropped connection gave no error")
		}
	}
	for range 2 {
		if got, err := post(t, f.Base); err != nil || got != 200 {
			t.Fatalf("status = %d, %v; want 200", got, err)
		}
	}
	for _, typ := range []string{"Patient", "Observation"} {
		all, err := p.All(context.Background(), typ)
		if err != nil {
			t.Fatal(err)
		}
		if len(all) != 1 {
			t.Errorf("%s count = %d, want 1", typ, len(all))
		}
	}
	if c := f.Counts(); c[Pass] != 2 || c[LoseResponse] != 1 {
		t.Errorf("counts = %v", c)
	}
}
