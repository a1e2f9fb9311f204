package pharmacy_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/kapgw/kapgw/internal/kap"
	"github.com/kapgw/kapgw/internal/kap/kaptest"
	"github.com/kapgw/kapgw/internal/secrets"
	"github.com/kapgw/kapgw/pharmacy"
	"github.com/kapgw/kapgw/pharmacy/script"
	"github.com/kapgw/kapgw/pharmacy/sign"
	"github.com/kapgw/kapgw/pharmacy/sim"
)

var secret = []byte("callback-secret-for-tests")

func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func signer(t testing.TB) secrets.Signer {
	t.Helper()
	d, err := secrets.OpenDevStore(context.Background(), discard(), t.TempDir(), "pharmacy")
	if err != nil {
		t.Fatal(err)
	}
	s, err := d.Signer("pharmacy")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// signedNewRx returns the home-dosing NewRx and its signature.
func signedNewRx(t testing.TB, s secrets.Signer) ([]byte, string) {
	t.Helper()
	ep, issues := kap.Decode(kaptest.Example(kaptest.HomeDosing))
	if issues != nil {
		t.Fatal(issues)
	}
	body, err := script.NewRx(ep, 0, script.Envelope{From: "org-med-1", MessageID: script.MessageID("NewRx", "ep-700001-rx1", 1), SentTime: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	jws, err := sign.Sign(context.Background(), s, body)
	if err != nil {
		t.Fatal(err)
	}
	return body, jws
}

// collector receives callbacks and keeps those that verify.
type collector struct {
	mu       sync.Mutex
	events   []pharmacy.Event
	rejected int
}

func (c *collector) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := pharmacy.VerifyCallback(secret, r.Header.Get(pharmacy.TimestampHeader), r.Header.Get(pharmacy.SignatureHeader), body, time.Now()); err != nil {
		c.rejected++
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	var e pharmacy.Event
	_ = json.Unmarshal(body, &e)
	c.events = append(c.events, e)
}

func (c *collector) wait(t testing.TB, n int) ([]pharmacy.Event, int) {
	t.Helper()
	for range 200 {
		c.mu.Lock()
		got, rej := slices.Clone(c.events), c.rejected
		c.mu.Unlock()
		if len(got)+rej >= n {
			return got, rej
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("callbacks did not arrive")
	return nil, 0
}

func start(t testing.TB, s secrets.Signer, f sim.Faults, callbackURL string) (*sim.Sim, *pharmacy.Client) {
	t.Helper()
	return startTimeout(t, s, f, callbackURL, 5*time.Second)
}

func startTimeout(t testing.TB, s secrets.Signer, f sim.Faults, callbackURL string, timeout time.Duration) (*sim.Sim, *pharmacy.Client) {
	t.Helper()
	ph := sim.New(sim.Config{Log: discard(), Keys: sign.KeysOf(s), CallbackURL: callbackURL, Secret: secret, Faults: f, HTTP: http.DefaultClient})
	srv := httptest.NewServer(ph.Handler())
	t.Cleanup(func() { srv.Close(); ph.Close() })
	c, err := pharmacy.NewClient(srv.URL, &http.Client{Timeout: timeout})
	if err != nil {
		t.Fatal(err)
	}
	return ph, c
}

func TestDeliveredWithCallbacks(t *testing.T) {
	t.Parallel()
	s := signer(t)
	col := &collector{}
	cb := httptest.NewServer(col)
	t.Cleanup(cb.Close)
	ph, c := start(t, s, sim.Faults{}, cb.URL)
	body, jws := signedNewRx(t, s)
	out, err := c.Send(context.Background(), body, jws)
	if err != nil || !out.Delivered() {
		t.Fatalf("Send = %+v, %v", out, err)
	}
	got, _ := col.wait(t, 3)
	var statuses []string
	for _, e := range got {
		statuses = append(statuses, e.FillStatus)
	}
	if !slices.Equal(statuses, []string{pharmacy.FillDispensed, pharmacy.FillShipped, pharmacy.FillDelivered}) || got[1].TrackingNumber == "" {
		t.Errorf("callbacks %+v", got)
	}
	if r := ph.Received(); len(r) != 1 || r[0].Kind != "NewRx" || r[0].Attempts != 1 {
		t.Errorf("received %+v", r)
	}
}

// TestRetriesReuseMessageID: a timeout and 503s are unknown, the retry
// with the same bytes is de-duplicated, so the pharmacy has one NewRx.
func TestRetriesReuseMessageID(t *testing.T) {
	t.Parallel()
	s := signer(t)
	ph, c := startTimeout(t, s, sim.Faults{FailFirst: 1, SlowFirst: 2, Slow: 10 * time.Second}, "", time.Second)
	body, jws := signedNewRx(t, s)
	for range 2 { // 503, then a timeout
		if _, err := c.Send(context.Background(), body, jws); !errors.Is(err, pharmacy.ErrUnknown) {
			t.Fatalf("Send under fault = %v, want ErrUnknown", err)
		}
	}
	out, err := c.Send(context.Background(), body, jws)
	if err != nil || !out.Delivered() {
		t.Fatalf("retry = %+v, %v", out, err)
	}
	if r := ph.Received(); len(r) != 1 || r[0].Attempts != 2 {
		t.Errorf("received %+v, want one NewRx seen twice", r)
	}
}

func TestErrorAnswers(t *testing.T) {
	t.Parallel()
	s := signer(t)
	_, c := start(t, s, sim.Faults{ErrorAll: true}, "")
	body, jws := signedNewRx(t, s)
	out, err := c.Send(context.Background(), body, jws)
	if err != nil || out.Delivered() || out.Kind != "Error" || out.Code != "900" {
		t.Errorf("ErrorAll: Send = %+v, %v", out, err)
	}
	_, c = start(t, signer(t), sim.Faults{}, "") // trusts another key
	out, err = c.Send(context.Background(), body, jws)
	if err != nil || out.Kind != "Error" || out.Description != "signature not valid" {
		t.Errorf("unknown key: Send = %+v, %v", out, err)
	}
}

func TestCallbackFaults(t *testing.T) {
	t.Parallel()
	s := signer(t)
	col := &collector{}
	cb := httptest.NewServer(col)
	t.Cleanup(cb.Close)
	_, c := start(t, s, sim.Faults{Duplicate: true, OutOfOrder: true}, cb.URL)
	body, jws := signedNewRx(t, s)
	if _, err := c.Send(context.Background(), body, jws); err != nil {
		t.Fatal(err)
	}
	got, _ := col.wait(t, 6)
	if len(got) != 6 || got[0].FillStatus != pharmacy.FillDelivered || got[0].EventID != got[1].EventID {
		t.Errorf("duplicate out-of-order callbacks: %+v", got)
	}
	bad := &collector{}
	cb2 := httptest.NewServer(bad)
	t.Cleanup(cb2.Close)
	_, c = start(t, s, sim.Faults{BadSignature: true}, cb2.URL)
	if _, err := c.Send(context.Background(), body, jws); err != nil {
		t.Fatal(err)
	}
	if got, rej := bad.wait(t, 3); len(got) != 0 || rej < 3 {
		t.Errorf("bad signature: accepted %d, rejected %d", len(got), rej)
	}
}

func TestVerifyCallback(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_780_000_000, 0)
	body := []byte(`{"eventId":"e1"}`)
	ts, sig := pharmacy.SignCallback(secret, now, body)
	if err := pharmacy.VerifyCallback(secret, ts, sig, body, now.Add(pharmacy.CallbackWindow)); err != nil {
		t.Errorf("within window: %v", err)
	}
	for name, err := range map[string]error{
		"late":        pharmacy.VerifyCallback(secret, ts, sig, body, now.Add(pharmacy.CallbackWindow+time.Second)),
		"early":       pharmacy.VerifyCallback(secret, ts, sig, body, now.Add(-pharmacy.CallbackWindow-time.Second)),
		"body":        pharmacy.VerifyCallback(secret, ts, sig, []byte(`{"eventId":"e2"}`), now),
		"secret":      pharmacy.VerifyCallback([]byte("other"), ts, sig, body, now),
		"timestamp":   pharmacy.VerifyCallback(secret, "x", sig, body, now),
		"not hex":     pharmacy.VerifyCallback(secret, ts, "zz", body, now),
		"other stamp": pharmacy.VerifyCallback(secret, "1780000001", sig, body, now),
	} {
		if !errors.Is(err, pharmacy.ErrCallbackAuth) {
			t.Errorf("%s: %v, want ErrCallbackAuth", name, err)
		}
	}
}
