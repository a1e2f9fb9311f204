package main

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/kapgw/kapgw/internal/fhirvalid"
	"github.com/kapgw/kapgw/internal/kap/kaptest"
	"github.com/kapgw/kapgw/internal/secrets"
	"github.com/kapgw/kapgw/pharmacy"
	"github.com/kapgw/kapgw/pharmacy/sim"
)

// runOut runs one kapgw command and returns its standard output.
func runOut(t *testing.T, args ...string) string {
	t.Helper()
	var out, errOut bytes.Buffer
	if err := run(context.Background(), append([]string{"kapgw"}, args...), func(string) string { return "" }, &out, &errOut); err != nil {
		t.Fatalf("kapgw %s: %v (%s)", strings.Join(args, " "), err, errOut.String())
	}
	return out.String()
}

// startPharmacy serves the simulated pharmacy on loopback, trusting the
// gateway's rx signing key (exported with kapgw rx public-key) and
// signing callbacks with the gateway's callback secret. The simulator is
// made once the gateway's address is known (setCallback).
func startPharmacy(t *testing.T, dataDir string) (url string, setCallback func(string) *sim.Sim) {
	t.Helper()
	url, _, setCallback = startPharmacyWith(t, dataDir, sim.Config{Faults: sim.Faults{Duplicate: true}})
	return url, setCallback
}

// startPharmacyWith is startPharmacy with the faults and refills of cfg;
// it also returns the callback secret.
func startPharmacyWith(t *testing.T, dataDir string, cfg sim.Config) (url string, secret []byte, setCallback func(string) *sim.Sim) {
	t.Helper()
	blk, _ := pem.Decode([]byte(runOut(t, "rx", "public-key", "--data-dir", dataDir)))
	if blk == nil {
		t.Fatal("kapgw rx public-key printed no PEM")
	}
	pub, err := x509.ParsePKIXPublicKey(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	dev, err := secrets.OpenDevStore(context.Background(), newLogger(io.Discard, "error"), dataDir)
	if err != nil {
		t.Fatal(err)
	}
	ref, _ := secrets.ParseRef("vault:secret/kapgw/pharmacy#callback_hmac")
	sec, err := dev.Secret(context.Background(), ref)
	if err != nil {
		t.Fatal(err)
	}
	var ph atomic.Pointer[sim.Sim]
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s := ph.Load(); s != nil {
			s.Handler().ServeHTTP(w, r)
			return
		}
		http.Error(w, "not ready", http.StatusServiceUnavailable)
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() {
		_ = srv.Close()
		if s := ph.Load(); s != nil {
			s.Close()
		}
	})
	return "http://" + ln.Addr().String(), []byte(sec), func(callbackURL string) *sim.Sim {
		s := sim.New(sim.Config{Log: newLogger(io.Discard, "error"), Keys: sim.TrustKey("ES384", pub), Secret: []byte(sec),
			CallbackURL: callbackURL, CallbackDelay: 20 * time.Millisecond, HTTP: &http.Client{Timeout: 10 * time.Second},
			Faults: cfg.Faults, Refills: cfg.Refills})
		ph.Store(s)
		return s
	}
}

// TestPrescriptionThroughGateway runs kapgw serve --pharmacy-url against
// the simulated pharmacy: an active prescription reaches it as exactly one
// signed NewRx, its fill callbacks become a MedicationDispense a partner
// reads through the FHIR API, cancelling it in a later document sends
// CancelRx, and kapgw rx track / rx blocked show the timeline and the
// blocked prescriptions on the same database.
func TestPrescriptionThroughGateway(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	pharmacyURL, makeSim := startPharmacy(t, dir)
	g := startGateway(t, "--data-dir", dir, "--pharmacy-url", pharmacyURL)
	ph := makeSim(g.base + "/pharmacy/v1/callbacks")
	g.token = g.login(t, "clinic-platform", "clinic", clinicScopes, nil)
	partner := g.as(g.login(t, "ehr-a", "partner", []string{"system/*.rs"}, []string{"org-thr-12"}))

	// The example moved to the last weeks, so today's rules (the fill
	// window) let it go.
	doc := recent(kaptest.Example(kaptest.HomeDosing), time.Now())
	id := gjson.GetBytes(doc, "id").String()
	resp, body := g.do(t, http.MethodPut, "/kap/v1/episodes/"+id, "application/json", doc)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("PUT: %d %s", resp.StatusCode, body)
	}
	if gjson.GetBytes(body, `prescriptions.issue.#(severity=="error")`).Exists() {
		t.Fatalf("prescription blocked: %s", gjson.GetBytes(body, "prescriptions"))
	}
	received := waitReceived(t, ph, 1)
	order := received[0].PrescriberOrderNumber

	var dispense []byte
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		resp, b := partner.do(t, http.MethodGet, "/fhir/r4/MedicationDispense/"+pharmacy.DispenseID(order), "", nil)
		if resp.StatusCode == http.StatusOK && gjson.GetBytes(b, "status").String() == "completed" {
			dispense = b
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if dispense == nil {
		t.Fatal("partner never read a completed MedicationDispense")
	}
	fhirvalid.New(t).Check(t, dispense)
	if got := ph.Received(); len(got) != 1 || got[0].Kind != "NewRx" {
		t.Fatalf("pharmacy received %+v, want exactly one NewRx", got)
	}

	cancelled := bytes.Replace(doc, []byte("\"status\": \"active\",\n      \"writtenAt\""), []byte("\"status\": \"cancelled\",\n      \"writtenAt\""), 1)
	if resp, body := g.do(t, http.MethodPut, "/kap/v1/episodes/"+id, "application/json", cancelled); resp.StatusCode != http.StatusOK {
		t.Fatalf("PUT cancelled: %d %s", resp.StatusCode, body)
	}
	if got := waitReceived(t, ph, 2); got[1].Kind != "CancelRx" || got[1].PrescriberOrderNumber != order {
		t.Fatalf("second message %+v, want CancelRx", got[1])
	}

	var track string
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if track = runOut(t, "rx", "track", "--data-dir", dir, order); strings.Contains(track, " cancelled ") {
			break
		}
	}
	for _, step := range []string{"written", "checked", "queued", "signed", "sent", "accepted", "dispensed", "shipped", "delivered", "cancelled"} {
		if !strings.Contains(track, " "+step+" ") {
			t.Errorf("rx track has no %s step:\n%s", step, track)
		}
	}
	if !containsTraceID(track) {
		t.Errorf("rx track shows no trace id:\n%s", track)
	}

	// The original document is blocked today (its fill window passed).
	other := bytes.Replace(kaptest.Example(kaptest.HomeDosing), []byte(`"id": "`+id+`"`), []byte(`"id": "ep-blocked-1"`), 1)
	if resp, body := g.do(t, http.MethodPut, "/kap/v1/episodes/ep-blocked-1", "application/json", other); resp.StatusCode != http.StatusCreated {
		t.Fatalf("PUT blocked: %d %s", resp.StatusCode, body)
	}
	if blocked := runOut(t, "rx", "blocked", "--data-dir", dir); !strings.Contains(blocked, "fill-window") || strings.Contains(blocked, order) {
		t.Errorf("rx blocked:\n%s", blocked)
	}
	if len(ph.Received()) != 2 {
		t.Errorf("pharmacy received %+v, want 2 messages", ph.Received())
	}
}

var timestamp = regexp.MustCompile(`"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"`)

// recent shifts every timestamp of doc by one offset, so its latest is an
// hour before now.
func recent(doc []byte, now time.Time) []byte {
	var last time.Time
	for _, m := range timestamp.FindAll(doc, -1) {
		if ts, _ := time.Parse(`"`+time.RFC3339+`"`, string(m)); ts.After(last) {
			last = ts
		}
	}
	shift := now.Add(-time.Hour).Sub(last).Truncate(time.Hour)
	return timestamp.ReplaceAllFunc(doc, func(m []byte) []byte {
		ts, _ := time.Parse(`"`+time.RFC3339+`"`, string(m))
		return []byte(ts.Add(shift).UTC().Format(`"` + time.RFC3339 + `"`))
	})
}

// containsTraceID reports whether a 32-hex-digit trace id is in s.
func containsTraceID(s string) bool {
	for _, f := range strings.Fields(s) {
		if len(f) == 32 && strings.Trim(f, "0123456789abcdef") == "" {
			return true
		}
	}
	return false
}

func waitReceived(t *testing.T, ph *sim.Sim, n int) []sim.Received {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if r := ph.Received(); len(r) >= n {
			return r
		}
	}
	t.Fatalf("pharmacy received %+v, want %d messages", ph.Received(), n)
	return nil
}

func TestRxCommandUsage(t *testing.T) {
	t.Parallel()
	err := run(context.Background(), []string{"kapgw", "rx", "track", "--data-dir", t.TempDir()}, os.Getenv, io.Discard, io.Discard)
	if exitCode(err) != 2 {
		t.Errorf("rx track without an id: %v, want a usage error", err)
	}
	err = run(context.Background(), []string{"kapgw", "rx", "track", "--data-dir", filepath.Join(t.TempDir(), "d"), "mr-none"}, os.Getenv, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "not found") {
		t.Errorf("rx track of an unknown prescription: %v", err)
	}
}
