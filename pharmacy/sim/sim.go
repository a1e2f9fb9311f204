// Package sim is a compounding pharmacy for development and tests: it
// accepts signed SCRIPT NewRx and CancelRx messages, answers Status (or
// Error), and later reports the fill through HMAC-signed callbacks. Faults
// chosen per run (errors, slow answers, duplicate and out-of-order
// callbacks, a bad callback signature) exercise the gateway's retries and
// de-duplication.
package sim

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/kapgw/kapgw/pharmacy"
	"github.com/kapgw/kapgw/pharmacy/script"
	"github.com/kapgw/kapgw/pharmacy/sign"
)

// Faults are the misbehaviours of one run.
type Faults struct {
	// FailFirst answers 503 to the first FailFirst requests, before reading
	// them.
	FailFirst int
	// SlowFirst delays the answer to the first SlowFirst requests by Slow,
	// after recording them, so that a client timing out retries a message
	// the pharmacy already has.
	SlowFirst int
	Slow      time.Duration
	// ErrorAll answers every NewRx with a SCRIPT Error instead of Status.
	ErrorAll bool
	// Duplicate sends every callback twice.
	Duplicate bool
	// OutOfOrder sends the fill callbacks last first.
	OutOfOrder bool
	// BadSignature signs callbacks with a wrong HMAC.
	BadSignature bool
}

// Config is what the simulator needs.
type Config struct {
	Log *slog.Logger
	// Keys are the gateway's signing keys the simulator trusts.
	Keys sign.Keys
	// CallbackURL receives the fill events; empty sends none.
	CallbackURL string
	// Secret is the callback HMAC secret shared with the gateway.
	Secret []byte
	// CallbackDelay is the pause before each callback.
	CallbackDelay time.Duration
	// Refills is how many refills the simulator fills (and reports) after
	// the first fill of every NewRx, straight away: refills that come
	// early.
	Refills int
	Faults  Faults
	HTTP    *http.Client
	Now     func() time.Time
}

// Received is one distinct message the simulator accepted.
type Received struct {
	Kind                  string
	MessageID             string
	PrescriberOrderNumber string
	// Attempts counts deliveries of this MessageID, retries included.
	Attempts int
}

// Callback is one callback the simulator posted and the gateway's answer.
type Callback struct {
	EventID string
	Type    string
	// Status is the HTTP status of the last attempt, 0 when none was
	// answered.
	Status int
}

// Sim is the simulated pharmacy.
type Sim struct {
	cfg       Config
	mu        sync.Mutex
	requests  int
	received  []*Received
	callbacks []Callback
	answers   map[string][]byte
	wg        sync.WaitGroup
	ctx       context.Context
	cancel    context.CancelFunc
}

// New returns a simulator; Close stops its callbacks.
func New(cfg Config) *Sim {
	ctx, cancel := context.WithCancel(context.Background())
	return &Sim{cfg: cfg, answers: map[string][]byte{}, ctx: ctx, cancel: cancel}
}

// Close stops pending callbacks and waits for them.
func (s *Sim) Close() {
	s.cancel()
	s.wg.Wait()
}

// Received returns the distinct messages accepted so far.
func (s *Sim) Received() []Received {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Received, len(s.received))
	for i, r := range s.received {
		out[i] = *r
	}
	return out
}

// Callbacks returns the callbacks posted so far, in order, with the
// gateway's answers.
func (s *Sim) Callbacks() []Callback {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.callbacks)
}

// Handler serves POST pharmacy.ScriptPath.
func (s *Sim) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+pharmacy.ScriptPath, s.serveScript)
	return mux
}

func (s *Sim) serveScript(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.requests++
	n := s.requests
	s.mu.Unlock()
	if n <= s.cfg.Faults.FailFirst {
		http.Error(w, "unavailable", http.StatusServiceUnavailable)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		http.Error(w, "read", http.StatusBadRequest)
		return
	}
	answer := s.accept(r.Context(), r.Header.Get(sign.Header), body)
	if n <= s.cfg.Faults.SlowFirst {
		select {
		case <-time.After(s.cfg.Faults.Slow):
		case <-r.Context().Done():
			return
		}
	}
	w.Header().Set("Content-Type", "application/xml")
	_, _ = w.Write(answer)
}

// accept checks one message and returns the answer to send; a MessageID
// seen before gets the same answer again and nothing else happens.
func (s *Sim) accept(ctx context.Context, jws string, body []byte) []byte {
	m, err := script.Parse(body)
	if err != nil {
		return s.errorAnswer(nil, "900", "message structure: "+err.Error())
	}
	if _, err := sign.Verify(ctx, s.cfg.Keys, jws, body); err != nil {
		return s.errorAnswer(m, "900", "signature not valid")
	}
	rx := m.Body.NewRx
	if rx == nil {
		rx = m.Body.CancelRx
	}
	if rx == nil {
		return s.errorAnswer(m, "900", "unsupported message "+m.Body.Kind())
	}
	if err := script.CheckPrescription(rx); err != nil {
		return s.errorAnswer(m, "900", err.Error())
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if a, ok := s.answers[m.Header.MessageID]; ok {
		i := slices.IndexFunc(s.received, func(r *Received) bool { return r.MessageID == m.Header.MessageID })
		s.received[i].Attempts++
		return a
	}
	s.received = append(s.received, &Received{Kind: m.Body.Kind(), MessageID: m.Header.MessageID, PrescriberOrderNumber: m.Header.PrescriberOrderNumber, Attempts: 1})
	var answer []byte
	if m.Body.NewRx != nil && s.cfg.Faults.ErrorAll {
		answer = s.errorAnswer(m, "900", "simulated refusal")
	} else {
		answer, _ = script.Reply(m, newID(), s.now(), script.Body{Status: &script.Status{Code: "000"}})
		s.schedule(m)
	}
	s.answers[m.Header.MessageID] = answer
	return answer
}

func (s *Sim) errorAnswer(m *script.Message, code, desc string) []byte {
	if m == nil {
		m = &script.Message{TransactionVersion: script.Version}
	}
	b, _ := script.Reply(m, newID(), s.now(), script.Body{Error: &script.Error{Code: code, DescriptionCode: "1000", Description: desc}})
	return b
}

func (s *Sim) now() string {
	now := time.Now
	if s.cfg.Now != nil {
		now = s.cfg.Now
	}
	return now().UTC().Format("2006-01-02T15:04:05.0Z")
}

func newID() string { return rand.Text()[:20] }

// schedule schedules the events that follow an accepted message.
func (s *Sim) schedule(m *script.Message) {
	if s.cfg.CallbackURL == "" {
		return
	}
	events := s.events(m)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for _, e := range events {
			select {
			case <-time.After(s.cfg.CallbackDelay):
			case <-s.ctx.Done():
				return
			}
			s.post(e)
			if s.cfg.Faults.Duplicate {
				s.post(e)
			}
		}
	}()
}

func (s *Sim) events(m *script.Message) []pharmacy.Event {
	base := pharmacy.Event{RelatesToMessageID: m.Header.MessageID, PrescriberOrderNumber: m.Header.PrescriberOrderNumber}
	if m.Body.CancelRx != nil {
		base.Type, base.Approved, base.EventID = pharmacy.EventCancelRxResponse, true, newID()
		return []pharmacy.Event{base}
	}
	qty, _ := strconv.Atoi(m.Body.NewRx.MedicationPrescribed.Quantity.Value)
	var out []pharmacy.Event
	for refill := range s.cfg.Refills + 1 {
		var fill []pharmacy.Event
		for _, st := range []string{pharmacy.FillDispensed, pharmacy.FillShipped, pharmacy.FillDelivered} {
			e := base
			e.EventID, e.Type, e.FillStatus, e.Quantity, e.Refill = newID(), pharmacy.EventRxFill, st, qty, refill
			if st != pharmacy.FillDispensed {
				e.Carrier, e.TrackingNumber = "UPS", "1Z"+m.Header.MessageID[:15]+strconv.Itoa(refill%10)
			}
			fill = append(fill, e)
		}
		if s.cfg.Faults.OutOfOrder {
			slices.Reverse(fill)
		}
		out = append(out, fill...)
	}
	return out
}

// post sends one event, retrying a few times on failure.
func (s *Sim) post(e pharmacy.Event) {
	now := time.Now
	if s.cfg.Now != nil {
		now = s.cfg.Now
	}
	e.OccurredAt = now().UTC()
	body, _ := json.Marshal(e)
	last := 0
	defer func() { s.answered(e, last) }()
	for attempt := range 5 {
		ts, sig := pharmacy.SignCallback(s.cfg.Secret, now(), body)
		if s.cfg.Faults.BadSignature {
			sig = corrupt(sig)
		}
		status, err := s.send(body, ts, sig)
		last = status
		if err == nil && status < 500 {
			s.cfg.Log.Info("callback sent", "event_id", e.EventID, "status", status)
			return
		}
		s.cfg.Log.Warn("callback failed", "event_id", e.EventID, "attempt", attempt, "status", status)
		select {
		case <-time.After(time.Duration(attempt+1) * 100 * time.Millisecond):
		case <-s.ctx.Done():
			return
		}
	}
}

// corrupt changes the first hex digit of a signature, so it never
// verifies.
func corrupt(sig string) string {
	if sig[0] == '0' {
		return "1" + sig[1:]
	}
	return "0" + sig[1:]
}

// answered records the gateway's last answer to one posting of e (a
// duplicate is posted, and recorded, twice).
func (s *Sim) answered(e pharmacy.Event, status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.callbacks = append(s.callbacks, Callback{EventID: e.EventID, Type: e.Type, Status: status})
}

func (s *Sim) send(body []byte, ts, sig string) (int, error) {
	req, err := http.NewRequestWithContext(s.ctx, http.MethodPost, s.cfg.CallbackURL, bytes.NewReader(body))
	if err != nil {
		return 0, fmt.Errorf("callback request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(pharmacy.TimestampHeader, ts)
	req.Header.Set(pharmacy.SignatureHeader, sig)
	resp, err := s.cfg.HTTP.Do(req)
	if err != nil {
		return 0, fmt.Errorf("callback: %w", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	return resp.StatusCode, nil
}

// TrustKey trusts one public key whatever key id a signature names: the
// simulator is configured with the gateway's key, not a key registry.
func TrustKey(alg string, pub crypto.PublicKey) sign.Keys {
	return func(context.Context, string) (string, crypto.PublicKey, error) { return alg, pub, nil }
}
