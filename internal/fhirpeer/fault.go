package fhirpeer

import (
	"bytes"
	"encoding/json"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"sync"
	"testing"
	"time"
)

// Action is what the fault proxy does with one request.
type Action int

// The actions. LoseResponse is the hard one for a sender: the peer has
// committed the request, but the sender never learns it.
const (
	Pass         Action = iota // forward and answer normally
	Fail500                    // answer 500 without forwarding
	Throttle429                // answer 429 with Retry-After: 1 without forwarding
	Unavailable                // answer 503 with Retry-After: 1 without forwarding
	Slow                       // wait Fault.Delay, then forward
	Drop                       // close the connection without forwarding
	LoseResponse               // forward, then close the connection instead of answering
	numActions
)

// The conflict actions are for scripts only; Random never picks them.
const (
	Conflict409     Action = numActions + iota // answer 409 without forwarding
	Precondition412                            // answer 412 without forwarding
	EntryConflict                              // answer 200 with a transaction-response whose entries are 409, without forwarding
	numAllActions
)

// String names the action for test messages.
func (a Action) String() string {
	return [...]string{"pass", "500", "429", "503", "slow", "drop", "lose-response", "409", "412", "entry-409"}[a]
}

// Fault is a reverse proxy in front of a peer that injects failures:
// scripted ones first (Script), then random ones at Rate. It is safe for
// concurrent use.
type Fault struct {
	// Base is the proxy's FHIR base URL (the peer's path on the proxy's
	// host).
	Base string
	// Delay is how long Slow waits.
	Delay time.Duration

	target *url.URL
	client *http.Client
	mu     sync.Mutex
	script []Action
	rate   float64
	rnd    *rand.Rand
	counts [numAllActions]int
}

// NewFault starts a fault proxy in front of the FHIR base URL target for
// the test; it passes everything until told otherwise.
func NewFault(tb testing.TB, target string) *Fault {
	tb.Helper()
	u, err := url.Parse(target)
	if err != nil {
		tb.Fatalf("fault proxy target: %v", err)
	}
	f := &Fault{
		Delay:  2 * time.Second,
		target: u,
		client: &http.Client{Timeout: time.Minute},
		rnd:    rand.New(rand.NewPCG(1, 2)),
	}
	srv := httptest.NewServer(f)
	tb.Cleanup(srv.Close)
	f.Base = srv.URL + u.Path
	return f
}

// Script makes the next requests meet these actions, in order.
func (f *Fault) Script(actions ...Action) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.script = append(f.script, actions...)
}

// Random makes each request after the script fail with probability rate,
// the failure picked evenly among the fault actions, from a fixed seed.
func (f *Fault) Random(rate float64, seed uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rate, f.rnd = rate, rand.New(rand.NewPCG(seed, seed+1))
}

// Counts returns how many requests met each action so far.
func (f *Fault) Counts() map[Action]int {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[Action]int{}
	for a, n := range f.counts {
		if n > 0 {
			out[Action(a)] = n
		}
	}
	return out
}

func (f *Fault) next() Action {
	f.mu.Lock()
	defer f.mu.Unlock()
	a := Pass
	switch {
	case len(f.script) > 0:
		a, f.script = f.script[0], f.script[1:]
	case f.rate > 0 && f.rnd.Float64() < f.rate:
		a = Action(1 + f.rnd.IntN(int(numActions)-1))
	}
	f.counts[a]++
	return a
}

// ServeHTTP applies the next action to the request.
func (f *Fault) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch a := f.next(); a {
	case Fail500:
		http.Error(w, `{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"exception"}]}`, http.StatusInternalServerError)
	case Throttle429, Unavailable:
		w.Header().Set("Retry-After", "1")
		status := http.StatusTooManyRequests
		if a == Unavailable {
			status = http.StatusServiceUnavailable
		}
		w.WriteHeader(status)
	case Drop:
		hangUp(w)
	case Slow:
		time.Sleep(f.Delay)
		f.forward(w, r, false)
	case LoseResponse:
		f.forward(w, r, true)
	case Conflict409, Precondition412:
		status := http.StatusConflict
		if a == Precondition412 {
			status = http.StatusPreconditionFailed
		}
		w.Header().Set("Content-Type", "application/fhir+json")
		w.WriteHeader(status)
		_, _ = w.Write([]byte(`{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"conflict"}]}`))
	case EntryConflict:
		entryConflict(w, r)
	default:
		f.forward(w, r, false)
	}
}

// forward sends the request to the peer and copies the answer back, or
// hangs up after the peer answered when lose is set.
func (f *Fault) forward(w http.ResponseWriter, r *http.Request, lose bool) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		hangUp(w)
		return
	}
	u := *f.target
	u.Path, u.RawQuery = r.URL.Path, r.URL.RawQuery
	req, err := http.NewRequestWithContext(r.Context(), r.Method, u.String(), bytes.NewReader(body))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	req.Header = r.Header.Clone()
	req.Header.Set("X-Forwarded-Host", r.Host) // the peer's next links name the proxy
	resp, err := f.client.Do(req)
	if err != nil {
		http.Error(w, "peer unreachable", http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil || lose {
		hangUp(w)
		return
	}
	for k, v := range resp.Header {
		w.Header()[k] = v
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(out)))
	w.WriteHeader(resp.StatusCode)
	_, _ = w.Write(out)
}

// entryConflict answers a transaction with a transaction-response whose
// every entry is 409 Conflict, as a server reporting per-entry outcomes
// would.
func entryConflict(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Entry []json.RawMessage `json:"entry"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		http.Error(w, "bad bundle", http.StatusBadRequest)
		return
	}
	type entry struct {
		Response struct {
			Status string `json:"status"`
		} `json:"response"`
	}
	out := struct {
		ResourceType string  `json:"resourceType"`
		Type         string  `json:"type"`
		Entry        []entry `json:"entry"`
	}{ResourceType: "Bundle", Type: "transaction-response", Entry: make([]entry, len(req.Entry))}
	for i := range out.Entry {
		out.Entry[i].Response.Status = "409 Conflict"
	}
	w.Header().Set("Content-Type", "application/fhir+json")
	_ = json.NewEncoder(w).Encode(out)
}

// hangUp closes the client's connection without an answer.
func hangUp(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	_ = conn.Close()
}
