package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/kapgw/kapgw/internal/fhirvalid"
	"github.com/kapgw/kapgw/internal/kap/kaptest"
	"github.com/kapgw/kapgw/mappers"
)

// gateway is a kapgw started through run() on a free loopback port.
type gateway struct {
	base    string
	metrics string // base URL of the metrics listener
	done    chan error
	stop    context.CancelFunc
	flags   []string // the store flags, for kapgw partners
	token   string   // sent as a Bearer token by do, when set
}

// startGateway runs `kapgw serve` with the given flags and waits until it is
// ready. The gateway is stopped, and its exit checked, when the test ends.
func startGateway(t *testing.T, flags ...string) *gateway {
	t.Helper()
	g, _ := startHooked(t, hooks{}, func(string) string { return "" }, flags...)
	g.flags = flags
	return g
}

func waitReady(t *testing.T, base string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("gateway not ready within 15s")
}

func (g *gateway) do(t *testing.T, method, path, contentType string, body []byte) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, g.base+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if g.token != "" {
		req.Header.Set("Authorization", "Bearer "+g.token)
	}
	resp, err := http.DefaultClient.Do(req)
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

// postgresURL returns the URL of a fresh, empty database on the test
// PostgreSQL server started by scripts/test.sh.
func postgresURL(t *testing.T) string {
	t.Helper()
	base := os.Getenv("KAPGW_TEST_DATABASE_URL")
	if base == "" {
		t.Fatal("KAPGW_TEST_DATABASE_URL is not set: run the tests with scripts/test.sh, which starts PostgreSQL")
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatalf("connect to test PostgreSQL: %v", err)
	}
	defer conn.Close(ctx)
	name := fmt.Sprintf("kapgw_cmd_%d", time.Now().UnixNano())
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create database: %v", err)
	}
	t.Cleanup(func() {
		c, err := pgx.Connect(context.Background(), base)
		if err != nil {
			return
		}
		defer c.Close(context.Background())
		_, _ = c.Exec(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + name
	return u.String()
}

func TestEndToEndSQLite(t *testing.T) {
	t.Parallel()
	g := startGateway(t, "--data-dir", t.TempDir())
	exerciseEpisode(t, g)
}

func TestEndToEndPostgres(t *testing.T) {
	t.Parallel()
	// --data-dir keeps the development secret store out of the source tree.
	g := startGateway(t, "--database-url", postgresURL(t), "--data-dir", t.TempDir())
	exerciseEpisode(t, g)
}

type putResult struct {
	Episode   string
	Created   bool
	Resources []struct{ Reference, VersionID, Action string }
}

// exerciseEpisode walks the main path: accept, re-send, read back, change.
func exerciseEpisode(t *testing.T, g *gateway) {
	t.Helper()
	doc := kaptest.Example("home-dosing")
	var ep map[string]any
	if err := json.Unmarshal(doc, &ep); err != nil {
		t.Fatal(err)
	}
	id := ep["id"].(string)
	g.token = g.login(t, "clinic-platform", "clinic", clinicScopes, nil)

	resp, body := g.do(t, http.MethodPut, "/kap/v1/episodes/"+id, "application/json", doc)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("first PUT: status %d, body %s", resp.StatusCode, body)
	}
	first := decodePut(t, body)
	if len(first.Resources) < 20 {
		t.Fatalf("first PUT listed %d resources, want at least 20", len(first.Resources))
	}
	for _, r := range first.Resources {
		if r.Action != "created" || r.VersionID != "1" {
			t.Errorf("first PUT: %s is %s v%s, want created v1", r.Reference, r.Action, r.VersionID)
		}
	}

	resp, body = g.do(t, http.MethodPut, "/kap/v1/episodes/"+id, "application/json", doc)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("second PUT: status %d, body %s", resp.StatusCode, body)
	}
	for _, r := range decodePut(t, body).Resources {
		if r.Action != "unchanged" || r.VersionID != "1" {
			t.Errorf("same document again: %s is %s v%s, want unchanged v1", r.Reference, r.Action, r.VersionID)
		}
	}

	resp, body = g.do(t, http.MethodGet, "/kap/v1/episodes/"+id+"/fhir", "", nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET bundle: status %d", resp.StatusCode)
	}
	var bundle struct {
		ResourceType, Type string
		Entry              []struct {
			FullURL  string          `json:"fullUrl"`
			Resource json.RawMessage `json:"resource"`
		}
	}
	if err := json.Unmarshal(body, &bundle); err != nil {
		t.Fatal(err)
	}
	if bundle.ResourceType != "Bundle" || bundle.Type != "collection" || len(bundle.Entry) != len(first.Resources) {
		t.Fatalf("bundle: %s/%s with %d entries, want Bundle/collection with %d", bundle.ResourceType, bundle.Type, len(bundle.Entry), len(first.Resources))
	}
	fhirvalid.New(t).Check(t, body)
	bundleBody := body

	var carePlan string
	for _, r := range first.Resources {
		if strings.HasPrefix(r.Reference, "CarePlan/") {
			carePlan = r.Reference
		}
	}
	resp, body = g.do(t, http.MethodGet, "/fhir/r4/"+carePlan, "", nil)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("ETag") != `W/"1"` || resp.Header.Get("Last-Modified") == "" {
		t.Fatalf("read %s: status %d ETag %q Last-Modified %q", carePlan, resp.StatusCode, resp.Header.Get("ETag"), resp.Header.Get("Last-Modified"))
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/fhir+json") {
		t.Errorf("read content type %q", ct)
	}

	// The instrument CodeSystem the CADSS Observations cite is published.
	resp, body = g.do(t, http.MethodGet, "/fhir/r4/CodeSystem/"+mappers.InstrumentCodeSystemID, "", nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("read instrument CodeSystem: status %d", resp.StatusCode)
	}
	fhirvalid.New(t).Check(t, body)
	var cs struct{ URL string }
	if err := json.Unmarshal(body, &cs); err != nil || cs.URL == "" {
		t.Fatalf("instrument CodeSystem has no url: %v", err)
	}
	if cited := bytes.Count(bundleBody, []byte(`"system":"`+cs.URL+`"`)); cited == 0 {
		t.Errorf("no Observation cites the published CodeSystem %s", cs.URL)
	}

	// Drop the last session: its Encounter is retired, not deleted.
	sessions := ep["sessions"].([]any)
	gone := sessions[len(sessions)-1].(map[string]any)["id"].(string)
	ep["sessions"] = sessions[:len(sessions)-1]
	measures := ep["measures"].([]any)
	kept := measures[:0]
	for _, m := range measures {
		if m.(map[string]any)["sessionId"] != gone {
			kept = append(kept, m)
		}
	}
	ep["measures"] = kept
	changed, _ := json.Marshal(ep)
	resp, body = g.do(t, http.MethodPut, "/kap/v1/episodes/"+id, "application/json", changed)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("changed PUT: status %d, body %s", resp.StatusCode, body)
	}
	removed := 0
	for _, r := range decodePut(t, body).Resources {
		if r.Action == "removed" {
			removed++
			if r.VersionID != "2" {
				t.Errorf("removed %s has version %s, want 2", r.Reference, r.VersionID)
			}
			resp, rb := g.do(t, http.MethodGet, "/fhir/r4/"+r.Reference+"/_history/1", "", nil)
			if resp.StatusCode != http.StatusOK {
				t.Errorf("history of removed %s: status %d", r.Reference, resp.StatusCode)
			}
			resp, rb = g.do(t, http.MethodGet, "/fhir/r4/"+r.Reference, "", nil)
			if resp.StatusCode != http.StatusOK || !bytes.Contains(rb, []byte(`entered-in-error`)) {
				t.Errorf("removed %s: status %d, not marked entered-in-error", r.Reference, resp.StatusCode)
			}
		}
	}
	if removed < 2 {
		t.Errorf("dropping a session and its measure removed %d resources, want at least 2", removed)
	}
}

func decodePut(t *testing.T, body []byte) putResult {
	t.Helper()
	var r putResult
	if err := json.Unmarshal(body, &r); err != nil {
		t.Fatalf("decode PUT response: %v", err)
	}
	return r
}

func TestConfigErrorsAreListedTogether(t *testing.T) {
	t.Parallel()
	env := map[string]string{"KAPGW_LOG_LEVEL": "loud", "KAPGW_DATABASE_URL": "mysql://x"}
	err := run(context.Background(), []string{"kapgw", "serve", "--addr", "nonsense"},
		func(k string) string { return env[k] }, io.Discard, io.Discard)
	if err == nil {
		t.Fatal("bad configuration accepted")
	}
	for _, want := range []string{"--addr", "--log-level", "--database-url"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %s", err, want)
		}
	}
}

func TestHelpAndUnknownCommand(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	if err := run(context.Background(), []string{"kapgw", "--help"}, os.Getenv, &out, io.Discard); err != nil {
		t.Fatalf("--help: %v", err)
	}
	for _, want := range []string{"serve", "migrate", "KAPGW_DATABASE_URL", "--data-dir"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("help does not mention %s", want)
		}
	}
	err := run(context.Background(), []string{"kapgw", "frobnicate"}, os.Getenv, io.Discard, io.Discard)
	if err == nil || exitCode(err) != 2 {
		t.Errorf("unknown command: err %v, exit code %d, want usage error with exit 2", err, exitCode(err))
	}
}

func TestMigrateCommand(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for i := 0; i < 2; i++ {
		var out bytes.Buffer
		err := run(context.Background(), []string{"kapgw", "migrate", "--data-dir", dir}, os.Getenv, &out, io.Discard)
		if err != nil || !strings.Contains(out.String(), "migrated sqlite") {
			t.Fatalf("migrate run %d: err %v, output %q", i+1, err, out.String())
		}
	}
}
