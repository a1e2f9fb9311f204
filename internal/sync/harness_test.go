package sync_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	gosync "sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"go.opentelemetry.io/otel/trace"

	"github.com/kapgw/kapgw/internal/exchange"
	"github.com/kapgw/kapgw/internal/intake"
	"github.com/kapgw/kapgw/internal/jobs"
	"github.com/kapgw/kapgw/internal/secrets"
	"github.com/kapgw/kapgw/internal/store"
	kapsync "github.com/kapgw/kapgw/internal/sync"
)

// pushRig is a store, exchange log, job queue and intake wired as kapgw
// serve wires them, with one partner ehr-1 (organization org-med-1).
type pushRig struct {
	st     *store.Store
	xlog   *exchange.Recorder
	cipher secrets.Cipher
	q      *jobs.Queue
	intake *intake.Service
	worker *kapsync.Worker
}

// rigOption changes how newPushRig wires the worker and queue.
type rigOption func(*rigConfig)

type rigConfig struct {
	wrap func(*store.Store) kapsync.Store // the store as the worker sees it
	poll time.Duration                    // the queue's fetch poll interval
}

// withStore makes the worker see the store through wrap.
func withStore(wrap func(*store.Store) kapsync.Store) rigOption {
	return func(c *rigConfig) { c.wrap = wrap }
}

// withPoll sets the queue's fetch poll interval; 0 is River's default
// (1s), as kapgw serve runs it.
func withPoll(d time.Duration) rigOption {
	return func(c *rigConfig) { c.poll = d }
}

// newPushRig registers ehr-1 with destination d and returns the rig with
// its queue not yet started, polling every 50ms unless an option says
// otherwise. tp traces job work (nil: none).
func newPushRig(t testing.TB, d store.Destination, res kapsync.Resolver, tp trace.TracerProvider, opts ...rigOption) *pushRig {
	t.Helper()
	ctx := context.Background()
	st := openStore(t)
	if err := st.AddClient(ctx, store.Client{ID: "ehr-1", Name: "EHR", Kind: "partner", JWKS: []byte(`{"keys":[]}`),
		Scopes: []string{"system/*.rs"}, Orgs: []string{"org-med-1"}, Rate: 10}); err != nil {
		t.Fatal(err)
	}
	d.PartnerID = "ehr-1"
	if err := st.PutDestination(ctx, d); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	dev, err := secrets.OpenDevStore(ctx, log, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	c, err := dev.Cipher(ctx, secrets.ExchangeKey)
	if err != nil {
		t.Fatal(err)
	}
	xlog := exchange.New(st, c, log, nil)
	cfg := rigConfig{poll: 50 * time.Millisecond}
	for _, o := range opts {
		o(&cfg)
	}
	var ws kapsync.Store = st
	if cfg.wrap != nil {
		ws = cfg.wrap(st)
	}
	w := kapsync.NewWorker(ws, xlog, res, log, time.Now, kapsync.Backoff{Base: 20 * time.Millisecond, Cap: 300 * time.Millisecond}, "test")
	workers := river.NewWorkers()
	river.AddWorker(workers, w)
	q, err := jobs.New(st, log, jobs.Config{Workers: workers, MaxWorkers: 8, FetchPollInterval: cfg.poll, TracerProvider: tp})
	if err != nil {
		t.Fatal(err)
	}
	svc := intake.New(st, time.Now, "").WithOutbox(kapsync.NewOutbox(st, q, time.Now, 50))
	return &pushRig{st: st, xlog: xlog, cipher: c, q: q, intake: svc, worker: w}
}

// start works jobs until the test ends.
func (r *pushRig) start(t testing.TB) {
	t.Helper()
	if err := r.q.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.q.Stop(context.Background()) })
}

// homeDosing is the example episode ep-700001 of organization org-med-1.
func homeDosing(t testing.TB) []byte {
	t.Helper()
	doc, err := os.ReadFile(filepath.Join("..", "kap", "kaptest", "testdata", "home-dosing.json"))
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

// waitFor polls cond every 100ms until it holds or timeout passes.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, timeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// pushRows returns the push rows of the exchange log, oldest first.
func pushRows(t testing.TB, st *store.Store) []store.Exchange {
	t.Helper()
	all, err := st.Exchanges(context.Background(), store.ExchangeFilter{PartnerID: "ehr-1", Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	var out []store.Exchange
	for i := len(all) - 1; i >= 0; i-- {
		if all[i].Kind == exchange.KindPush {
			out = append(out, all[i])
		}
	}
	return out
}

// echoPartner answers every transaction after delay with a
// transaction-response of 201s, each with a fresh id, and counts the
// entries' request URLs.
type echoPartner struct {
	url  string
	mu   gosync.Mutex
	puts map[string]int
}

func startEcho(tb testing.TB, delay time.Duration) *echoPartner {
	tb.Helper()
	e := &echoPartner{puts: map[string]int{}}
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Entry []struct {
				Resource struct {
					ResourceType string `json:"resourceType"`
				} `json:"resource"`
				Request struct {
					URL string `json:"url"`
				} `json:"request"`
			} `json:"entry"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			http.Error(w, "bad bundle", http.StatusBadRequest)
			return
		}
		time.Sleep(delay)
		type entry struct {
			Response map[string]string `json:"response"`
		}
		out := struct {
			ResourceType string  `json:"resourceType"`
			Type         string  `json:"type"`
			Entry        []entry `json:"entry"`
		}{"Bundle", "transaction-response", make([]entry, len(req.Entry))}
		e.mu.Lock()
		for i, en := range req.Entry {
			e.puts[en.Request.URL]++
			out.Entry[i].Response = map[string]string{"status": "201 Created",
				"location": fmt.Sprintf("%s/e%d/_history/1", en.Resource.ResourceType, n.Add(1))}
		}
		e.mu.Unlock()
		w.Header().Set("Content-Type", "application/fhir+json")
		_ = json.NewEncoder(w).Encode(out)
	}))
	tb.Cleanup(srv.Close)
	e.url = srv.URL + "/fhir/R4"
	return e
}

// sent returns how many entries were sent to each conditional URL.
func (e *echoPartner) sent() map[string]int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return maps.Clone(e.puts)
}
