package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kapgw/kapgw/internal/kap/kaptest"
)

// clinicScopes are the scopes of the test clinic platform client.
var clinicScopes = []string{"kap/episodes.write", "kap/episodes.read", "system/*.rs"}

// partners runs `kapgw partners ARGS` against the gateway's store and
// returns its output.
func (g *gateway) partners(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	all := append([]string{"kapgw", "partners"}, args...)
	for i := 0; i+1 < len(g.flags); i++ {
		if g.flags[i] == "--data-dir" || g.flags[i] == "--database-url" {
			all = append(all, g.flags[i], g.flags[i+1])
		}
	}
	err := run(context.Background(), all, func(string) string { return "" }, &out, io.Discard)
	return out.String(), err
}

// mustPartners is partners that fails the test on error.
func (g *gateway) mustPartners(t *testing.T, args ...string) string {
	t.Helper()
	out, err := g.partners(t, args...)
	if err != nil {
		t.Fatalf("kapgw partners %s: %v", strings.Join(args, " "), err)
	}
	return out
}

// keygen makes a key pair with `kapgw partners keygen` and returns the
// private key and JWKS file names.
func (g *gateway) keygen(t *testing.T, kid string) (string, string) {
	t.Helper()
	dir := t.TempDir()
	key, jwks := filepath.Join(dir, "key.pem"), filepath.Join(dir, "jwks.json")
	g.mustPartners(t, "keygen", "--kid", kid, "--key-out", key, "--jwks-out", jwks)
	return key, jwks
}

// login registers a client (as the README walk-through does) and returns
// an access token for it.
func (g *gateway) login(t *testing.T, id, kind string, scopes, orgs []string) string {
	t.Helper()
	key, jwks := g.keygen(t, id+"-k1")
	args := []string{"add", "--id", id, "--name", "Test " + id, "--kind", kind, "--jwks", jwks, "--rate", "1000/s"}
	for _, s := range scopes {
		args = append(args, "--scope", s)
	}
	for _, o := range orgs {
		args = append(args, "--org", o)
	}
	g.mustPartners(t, args...)
	status, tok := g.requestToken(t, id, key, id+"-k1", strings.Join(scopes, " "))
	if status != http.StatusOK {
		t.Fatalf("token for %s: status %d", id, status)
	}
	return tok
}

// requestToken signs an assertion with `kapgw partners assertion` and
// posts it to the token endpoint.
func (g *gateway) requestToken(t *testing.T, id, key, kid, scope string) (int, string) {
	t.Helper()
	a := strings.TrimSpace(g.mustPartners(t, "assertion", "--id", id, "--key", key, "--kid", kid, "--token-url", g.base+"/auth/token"))
	resp, err := http.PostForm(g.base+"/auth/token", url.Values{"grant_type": {"client_credentials"},
		"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"},
		"client_assertion":      {a}, "scope": {scope}})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		AccessToken string `json:"access_token"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out.AccessToken
}

// as returns a copy of g that sends tok.
func (g *gateway) as(tok string) *gateway {
	c := *g
	c.token = tok
	return &c
}

// TestPartnersAndAccessMatrix registers clients on a running gateway with
// the CLI (no restart), then checks who sees what: each partner sees the
// patients of the organizations it serves, never another partner's; a
// revoked consent cuts access at once; disable and rotate-key bite at once.
func TestPartnersAndAccessMatrix(t *testing.T) {
	t.Parallel()
	g := startGateway(t, "--data-dir", t.TempDir(), "--client-cache", "0s")
	clinic := g.as(g.login(t, "clinic-platform", "clinic", clinicScopes, nil))

	docs := map[string][]byte{}
	patients := map[string]string{} // example -> Patient reference
	for _, name := range []string{kaptest.HomeDosing, kaptest.FourDosings} {
		doc := kaptest.Example(name)
		var ep struct{ ID string }
		_ = json.Unmarshal(doc, &ep)
		resp, body := clinic.do(t, http.MethodPut, "/kap/v1/episodes/"+ep.ID, "application/json", doc)
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("PUT %s: %d %s", name, resp.StatusCode, body)
		}
		for _, r := range decodePut(t, body).Resources {
			if strings.HasPrefix(r.Reference, "Patient/") {
				patients[name] = r.Reference
			}
		}
		docs[name] = doc
	}
	// home-dosing's therapists are at org-thr-12, four-dosings' at
	// org-thr-23 (both share the medical practice org-med-1).
	a := g.as(g.login(t, "ehr-a", "partner", []string{"system/*.rs"}, []string{"org-thr-12"}))
	b := g.as(g.login(t, "ehr-b", "partner", []string{"system/*.read"}, []string{"org-thr-23"}))

	wantStatus := func(who *gateway, name, path string, want int) {
		t.Helper()
		resp, body := who.do(t, http.MethodGet, path, "", nil)
		if resp.StatusCode != want {
			t.Errorf("%s GET %s: %d, want %d (%s)", name, path, resp.StatusCode, want, body)
		}
	}
	wantStatus(clinic, "clinic", "/fhir/r4/"+patients[kaptest.HomeDosing], 200)
	wantStatus(a, "ehr-a", "/fhir/r4/"+patients[kaptest.HomeDosing], 200)
	wantStatus(b, "ehr-b", "/fhir/r4/"+patients[kaptest.FourDosings], 200)
	wantStatus(a, "ehr-a", "/fhir/r4/"+patients[kaptest.FourDosings], 404)
	wantStatus(b, "ehr-b", "/fhir/r4/"+patients[kaptest.HomeDosing], 404)
	wantStatus(a, "ehr-a", "/fhir/r4/"+patients[kaptest.FourDosings]+"/_history/1", 404)
	wantStatus(a, "ehr-a", "/kap/v1/episodes/x", 403)

	// The patient revokes data sharing in a later document: cut at once.
	var ep map[string]any
	_ = json.Unmarshal(docs[kaptest.HomeDosing], &ep)
	for _, c := range ep["consents"].([]any) {
		if c.(map[string]any)["kind"] == "data-sharing" {
			c.(map[string]any)["revokedAt"] = "2026-04-01T10:00:00Z"
		}
	}
	revoked, _ := json.Marshal(ep)
	if resp, body := clinic.do(t, http.MethodPut, "/kap/v1/episodes/"+ep["id"].(string), "application/json", revoked); resp.StatusCode != 200 {
		t.Fatalf("PUT revoked: %d %s", resp.StatusCode, body)
	}
	wantStatus(a, "ehr-a after revocation", "/fhir/r4/"+patients[kaptest.HomeDosing], 404)
	wantStatus(clinic, "clinic after revocation", "/fhir/r4/"+patients[kaptest.HomeDosing], 200)

	// list shows the clients; disable bites on the next request.
	if out := g.mustPartners(t, "list"); !strings.Contains(out, "ehr-a") || !strings.Contains(out, "clinic-platform") {
		t.Fatalf("list:\n%s", out)
	}
	g.mustPartners(t, "disable", "--id", "ehr-b")
	wantStatus(b, "ehr-b disabled", "/fhir/r4/"+patients[kaptest.FourDosings], 401)

	// rotate-key: the old key no longer gets tokens, the new one does.
	oldKey, _ := g.keygen(t, "x")
	_ = os.Remove(oldKey)
	newKey, newJWKS := g.keygen(t, "ehr-a-k2")
	g.mustPartners(t, "rotate-key", "--id", "ehr-a", "--jwks", newJWKS)
	if status, _ := g.requestToken(t, "ehr-a", newKey, "ehr-a-k1", "system/*.rs"); status != http.StatusUnauthorized {
		t.Fatalf("token with the rotated-out kid: %d, want 401", status)
	}
	if status, _ := g.requestToken(t, "ehr-a", newKey, "ehr-a-k2", "system/*.rs"); status != http.StatusOK {
		t.Fatalf("token with the new key: %d", status)
	}

	// Bad registrations are refused with every problem listed.
	_, err := g.partners(t, "add", "--id", "ehr-c", "--kind", "partner", "--scope", "kap/episodes.write", "--jwks", "http://10.0.0.1/jwks")
	if err == nil || exitCode(err) != 2 || !strings.Contains(err.Error(), "--name") || !strings.Contains(err.Error(), "--org") ||
		!strings.Contains(err.Error(), "kap/episodes.write") || !strings.Contains(err.Error(), "https") {
		t.Fatalf("bad add: %v", err)
	}
}
