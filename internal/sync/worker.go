package sync

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	gosync "sync"
	"time"

	"github.com/riverqueue/river"

	"github.com/kapgw/kapgw/internal/store"
)

// Store is what a delivery reads and records.
type Store interface {
	Destination(ctx context.Context, partnerID string) (store.Destination, error)
	EpisodeAccess(ctx context.Context, episodeID string) ([]store.PatientAccess, error)
	EpisodeResources(ctx context.Context, id string) ([]store.Version, error)
	DeliveredFor(ctx context.Context, partnerID string, refs []string) (map[string]store.Delivered, error)
	RecordDelivered(ctx context.Context, partnerID string, ds []store.Delivered) error
	AcquireLease(ctx context.Context, partnerID, patientID, holder string, ttl time.Duration) (bool, error)
	ReleaseLease(ctx context.Context, partnerID, patientID, holder string) error
	AddDeadLetter(ctx context.Context, d store.DeadLetter) (int64, error)
	AddExchange(ctx context.Context, e store.Exchange) (int64, error)
}

// Backoff is the retry schedule: capped exponential with full jitter.
type Backoff struct {
	Base, Cap time.Duration
}

// Worker delivers PushArgs jobs.
type Worker struct {
	river.WorkerDefaults[PushArgs]
	store   Store
	secrets Resolver
	log     *slog.Logger
	now     func() time.Time
	backoff Backoff
	holder  string
	wrap    func(http.RoundTripper) http.RoundTripper // nil: the guarded transport as is

	mu      gosync.Mutex
	clients map[string]*partnerClient
	waits   map[int64]time.Duration // Retry-After per job id, read by NextRetry
}

// NewWorker returns the delivery worker. holder names this process in
// delivery leases.
func NewWorker(st Store, secrets Resolver, log *slog.Logger, now func() time.Time, b Backoff, holder string) *Worker {
	if b.Base <= 0 {
		b.Base = time.Second
	}
	if b.Cap <= 0 {
		b.Cap = 10 * time.Minute
	}
	return &Worker{store: st, secrets: secrets, log: log, now: now, backoff: b, holder: holder,
		clients: map[string]*partnerClient{}, waits: map[int64]time.Duration{}}
}

// WithTransport wraps every partner client's guarded transport, for
// example with tracing; the guard stays innermost. Call it before work.
func (w *Worker) WithTransport(wrap func(http.RoundTripper) http.RoundTripper) *Worker {
	w.wrap = wrap
	return w
}

// Timeout bounds one attempt (the lease outlives it).
func (w *Worker) Timeout(*river.Job[PushArgs]) time.Duration { return 2 * time.Minute }

const leaseTTL = 3 * time.Minute

// Work delivers the current state of the episode to the partner.
func (w *Worker) Work(ctx context.Context, job *river.Job[PushArgs]) error {
	a := job.Args
	holder := w.holder + "/" + strconv.FormatInt(job.ID, 10)
	ok, err := w.store.AcquireLease(ctx, a.PartnerID, a.PatientID, holder, leaseTTL)
	if err != nil {
		return err
	}
	if !ok { // another delivery for this patient is running: wait, uncounted
		return river.JobSnooze(time.Duration(100+rand.IntN(400)) * time.Millisecond)
	}
	defer func() { _ = w.store.ReleaseLease(context.WithoutCancel(ctx), a.PartnerID, a.PatientID, holder) }()
	start := w.now()
	n, err := w.deliver(ctx, a)
	w.logExchange(ctx, job, n, w.now().Sub(start), err)
	if err == nil {
		return nil
	}
	return w.classify(ctx, job, err)
}

// deliver sends what changed since the partner's last delivery and returns
// how many resources went; 0 and nil when nothing did.
func (w *Worker) deliver(ctx context.Context, a PushArgs) (int, error) {
	d, err := w.store.Destination(ctx, a.PartnerID)
	if err != nil {
		return 0, err
	}
	access, err := w.store.EpisodeAccess(ctx, a.EpisodeID)
	if err != nil {
		return 0, err
	}
	if _, ok := visible(d, access, w.now()); !ok {
		return 0, nil // consent revoked or partner disabled since: nothing to send
	}
	vs, err := w.store.EpisodeResources(ctx, a.EpisodeID)
	if err != nil {
		return 0, err
	}
	refs := make([]string, len(vs))
	for i, v := range vs {
		refs[i] = v.Type + "/" + v.ID
	}
	held, err := w.store.DeliveredFor(ctx, a.PartnerID, refs)
	if err != nil {
		return 0, err
	}
	want := map[string]bool{}
	for _, t := range d.Types {
		want[t] = true
	}
	items, err := parseItems(vs, want)
	if err != nil || !changed(items, held) {
		return 0, err
	}
	c, err := w.client(d)
	if err != nil {
		return 0, err
	}
	for chunk := range slices.Chunk(items, maxEntries) {
		bundle, err := encodeBundle(chunk, held)
		if err != nil {
			return 0, err
		}
		body, err := c.transaction(ctx, bundle)
		if err != nil {
			return len(items), err
		}
		ds, err := remoteIDs(body, chunk)
		if err != nil {
			return len(items), err
		}
		if err := w.store.RecordDelivered(ctx, a.PartnerID, ds); err != nil {
			return len(items), err
		}
		for _, d := range ds {
			held[d.Type+"/"+d.ID] = d
		}
	}
	return len(items), nil
}

// maxEntries caps a transaction's entries: Medplum refuses conditional
// transactions of more than 8.
const maxEntries = 8

// changed reports whether any item is newer than what the partner holds.
func changed(items []item, held map[string]store.Delivered) bool {
	for _, it := range items {
		if h, ok := held[it.Type+"/"+it.ID]; !ok || h.VersionID < it.VersionID {
			return true
		}
	}
	return false
}

// client returns the partner's client, rebuilt when its destination changed.
func (w *Worker) client(d store.Destination) (*partnerClient, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if c, ok := w.clients[d.PartnerID]; ok && sameDestination(c.dest, d) {
		return c, nil
	}
	c, err := newPartnerClient(d, w.secrets, w.now, w.wrap)
	if err != nil {
		return nil, err
	}
	w.clients[d.PartnerID] = c
	return c, nil
}

func sameDestination(a, b store.Destination) bool {
	return a.BaseURL == b.BaseURL && a.Auth == b.Auth && a.TokenURL == b.TokenURL && a.ClientID == b.ClientID &&
		a.KeyID == b.KeyID && a.SecretRef == b.SecretRef && a.Scope == b.Scope && a.Concurrency == b.Concurrency &&
		a.Rate == b.Rate && a.Allow == b.Allow
}

// classify turns a failed attempt into River's next step: dead letter at
// once for answers that cannot succeed, after the last attempt for the
// rest; otherwise a retry (NextRetry picks when).
func (w *Worker) classify(ctx context.Context, job *river.Job[PushArgs], err error) error {
	var se *StatusError
	code := ""
	if errors.As(err, &se) {
		code = strconv.Itoa(se.Status)
		if hopeless(se.Status) {
			return w.dead(ctx, job, "rejected", code, err)
		}
		if se.RetryAfter > 0 {
			w.mu.Lock()
			w.waits[job.ID] = min(se.RetryAfter, w.backoff.Cap)
			w.mu.Unlock()
		}
	}
	if errors.Is(err, ErrAddress) {
		return w.dead(ctx, job, "address", code, err)
	}
	if job.Attempt >= job.MaxAttempts {
		return w.dead(ctx, job, "attempts", code, err)
	}
	return err
}

// hopeless reports 4xx answers a retry cannot fix. 401 (token expired),
// 408, 409/412 (conflicts: the next attempt re-reads and re-sends) and 429
// are retried.
func hopeless(status int) bool {
	switch status {
	case http.StatusUnauthorized, http.StatusRequestTimeout, http.StatusConflict,
		http.StatusPreconditionFailed, http.StatusTooManyRequests:
		return false
	}
	return status >= 400 && status < 500
}

func (w *Worker) dead(ctx context.Context, job *river.Job[PushArgs], reason, code string, cause error) error {
	a := job.Args
	id, err := w.store.AddDeadLetter(ctx, store.DeadLetter{PartnerID: a.PartnerID, EpisodeID: a.EpisodeID,
		PatientID: a.PatientID, Reason: reason, Code: code, Attempts: job.Attempt})
	if err != nil {
		return err // retried: the dead letter must not be lost
	}
	w.log.WarnContext(ctx, "sync delivery dead-lettered", "partner_id", a.PartnerID, "episode_id", a.EpisodeID,
		"dead_letter_id", id, "reason", reason, "code", code)
	return river.JobCancel(cause)
}

// NextRetry honours Retry-After, else capped exponential backoff with full
// jitter: a uniform wait in [0, min(Cap, Base*2^attempt)).
func (w *Worker) NextRetry(job *river.Job[PushArgs]) time.Time {
	w.mu.Lock()
	wait, ok := w.waits[job.ID]
	delete(w.waits, job.ID)
	w.mu.Unlock()
	if ok {
		return w.now().Add(wait)
	}
	ceil := w.backoff.Base << min(job.Attempt, 30)
	if ceil <= 0 || ceil > w.backoff.Cap {
		ceil = w.backoff.Cap
	}
	return w.now().Add(time.Duration(rand.Int64N(int64(ceil) + 1)))
}

// logExchange puts the attempt in the exchange log (ids and codes only).
func (w *Worker) logExchange(ctx context.Context, job *river.Job[PushArgs], n int, took time.Duration, err error) {
	status, code, class := "ok", "200", ""
	var se *StatusError
	switch {
	case err == nil && n == 0:
		status, code = "unchanged", ""
	case errors.As(err, &se):
		status, code, class = "error", strconv.Itoa(se.Status), "status"
	case err != nil:
		status, code, class = "error", "", "transport"
	}
	_, lerr := w.store.AddExchange(ctx, store.Exchange{At: w.now(), Kind: "push", Direction: "out",
		EpisodeID: job.Args.EpisodeID, PartnerID: job.Args.PartnerID, Refs: []string{"Patient/" + job.Args.PatientID},
		Operation: "POST transaction", Status: status, Code: code, Attempt: job.Attempt, Duration: took, ErrorClass: class})
	if lerr != nil {
		w.log.ErrorContext(ctx, "sync exchange log failed", "partner_id", job.Args.PartnerID, "error", fmt.Sprint(lerr))
	}
}
