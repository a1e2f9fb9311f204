package sync

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
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
}

// ExchangeLog records every push attempt with its encrypted payload and
// the trace id of ctx (exchange.Recorder).
type ExchangeLog interface {
	Record(ctx context.Context, e store.Exchange, payload []byte) (int64, error)
}

// Backoff is the retry schedule: capped exponential with full jitter.
type Backoff struct {
	Base, Cap time.Duration
}

// Worker delivers PushArgs jobs.
type Worker struct {
	river.WorkerDefaults[PushArgs]
	store   Store
	xlog    ExchangeLog
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

// NewWorker returns the delivery worker. Every attempt goes to xlog;
// holder names this process in delivery leases.
func NewWorker(st Store, xlog ExchangeLog, secrets Resolver, log *slog.Logger, now func() time.Time, b Backoff, holder string) *Worker {
	if b.Base <= 0 {
		b.Base = time.Second
	}
	if b.Cap <= 0 {
		b.Cap = 10 * time.Minute
	}
	return &Worker{store: st, xlog: xlog, secrets: secrets, log: log, now: now, backoff: b, holder: holder,
		clients: map[string]*partnerClient{}, waits: map[int64]time.Duration{}}
}

// WithTransport wraps every partner client's guarded transport, for
// example with tracing; the guard stays innermost. Call it before work.
func (w *Worker) WithTransport(wrap func(http.RoundTripper) http.RoundTripper) *Worker {
	w.wrap = wrap
	return w
}

// WorkTimeout bounds one attempt. A process killed during an attempt
// leaves its job running; River rescues it once this has passed (with
// jobs.Config.RescueAfter no longer than a minute or so).
const WorkTimeout = 30 * time.Second

// Timeout bounds one attempt (the lease outlives it).
func (w *Worker) Timeout(*river.Job[PushArgs]) time.Duration { return WorkTimeout }

// leaseTTL outlives an attempt, so two deliveries for one patient never
// overlap, and is short, so a killed process blocks its patients briefly.
const leaseTTL = WorkTimeout + 10*time.Second

// attempt is one run of a delivery job.
type attempt struct {
	job    *river.Job[PushArgs]
	holder string // its name in leases
	logged bool   // some request of this attempt is in the exchange log
}

// snooze waits for another delivery without spending an attempt.
func snooze() error {
	return river.JobSnooze(time.Duration(100+rand.IntN(400)) * time.Millisecond)
}

// errBusy means another delivery is sending a shared resource this one
// needs first.
var errBusy = errors.New("shared resource being delivered")

// Work delivers the current state of the episode to the partner.
func (w *Worker) Work(ctx context.Context, job *river.Job[PushArgs]) error {
	a := job.Args
	holder := w.holder + "/" + strconv.FormatInt(job.ID, 10)
	ok, err := w.store.AcquireLease(ctx, a.PartnerID, a.PatientID, holder, leaseTTL)
	if err != nil {
		return err
	}
	if !ok { // another delivery for this patient is running: wait, uncounted
		return snooze()
	}
	defer func() { _ = w.store.ReleaseLease(context.WithoutCancel(ctx), a.PartnerID, a.PatientID, holder) }()
	at := &attempt{job: job, holder: holder}
	start := w.now()
	err = w.deliver(ctx, at)
	if errors.Is(err, errBusy) {
		return snooze()
	}
	if !at.logged { // nothing was sent: the attempt is still in the log
		w.record(ctx, at, []string{"Patient/" + a.PatientID}, nil, 0, w.now().Sub(start), err)
	}
	if err == nil {
		return nil
	}
	return w.classify(ctx, job, err)
}

// errReview marks a delivery the partner refused with a conflict that the
// destination's rule, or a second conflict after re-sending, leaves to a
// person.
var errReview = errors.New("conflict left for review")

// deliver sends what changed since the partner's last delivery. On a 409
// or 412 it re-reads our current state and sends once more when the
// destination's rule is resend; a rule of review, or a second conflict,
// gives errReview.
func (w *Worker) deliver(ctx context.Context, at *attempt) error {
	for resent := false; ; resent = true {
		rule, err := w.deliverOnce(ctx, at)
		if !conflict(err) {
			return err
		}
		if rule == "review" || resent {
			return fmt.Errorf("%w: %w", errReview, err)
		}
		w.log.InfoContext(ctx, "sync conflict, re-sending", "partner_id", at.job.Args.PartnerID,
			"episode_id", at.job.Args.EpisodeID, "job_id", at.job.ID)
	}
}

// deliverOnce reads the episode and what the partner holds, and sends what
// is newer; it returns the destination's conflict rule.
func (w *Worker) deliverOnce(ctx context.Context, at *attempt) (string, error) {
	a := at.job.Args
	d, err := w.store.Destination(ctx, a.PartnerID)
	if err != nil {
		return "", err
	}
	access, err := w.store.EpisodeAccess(ctx, a.EpisodeID)
	if err != nil {
		return d.OnConflict, err
	}
	if _, ok := visible(d, access, w.now()); !ok {
		return d.OnConflict, nil // consent revoked or partner disabled since: nothing to send
	}
	vs, err := w.store.EpisodeResources(ctx, a.EpisodeID)
	if err != nil {
		return d.OnConflict, err
	}
	refs := make([]string, len(vs))
	for i, v := range vs {
		refs[i] = v.Type + "/" + v.ID
	}
	held, err := w.store.DeliveredFor(ctx, a.PartnerID, refs)
	if err != nil {
		return d.OnConflict, err
	}
	want := map[string]bool{}
	for _, t := range d.Types {
		want[t] = true
	}
	items, err := parseItems(vs, want)
	if items = pending(items, held); err != nil || len(items) == 0 {
		return d.OnConflict, err
	}
	if first := firstShared(items, held); len(first) > 0 {
		release, err := w.leaseShared(ctx, at, first)
		if err != nil {
			return d.OnConflict, err
		}
		defer release()
		if held, err = w.store.DeliveredFor(ctx, a.PartnerID, refs); err != nil { // it may have gone meanwhile
			return d.OnConflict, err
		}
		if items = pending(items, held); len(items) == 0 {
			return d.OnConflict, nil
		}
	}
	c, err := w.client(d)
	if err != nil {
		return d.OnConflict, err
	}
	for chunk := range slices.Chunk(items, maxEntries) {
		if err := w.send(ctx, at, c, chunk, held); err != nil {
			return d.OnConflict, err
		}
	}
	return d.OnConflict, nil
}

// send posts one chunk as a transaction Bundle, logs the request, and
// records what the partner now holds.
func (w *Worker) send(ctx context.Context, at *attempt, c *partnerClient, chunk []item, held map[string]store.Delivered) error {
	bundle, err := encodeBundle(chunk, held)
	if err != nil {
		return err
	}
	refs := make([]string, len(chunk))
	for i, it := range chunk {
		refs[i] = it.Type + "/" + it.ID
	}
	start := w.now()
	body, status, err := c.transaction(ctx, bundle)
	var ds []store.Delivered
	if err == nil {
		ds, err = remoteIDs(body, chunk, c.host)
	}
	w.record(ctx, at, refs, bundle, status, w.now().Sub(start), err)
	if err != nil {
		return err
	}
	if err := w.store.RecordDelivered(ctx, at.job.Args.PartnerID, ds); err != nil {
		return err
	}
	for _, d := range ds {
		held[d.Type+"/"+d.ID] = d
	}
	return nil
}

// maxEntries caps a transaction's entries: Medplum refuses conditional
// transactions of more than 8.
const maxEntries = 8

// pending keeps the items the partner does not hold at their version, or
// whose id at the partner is unknown; references to the others are
// rewritten to the partner's ids.
func pending(items []item, held map[string]store.Delivered) []item {
	return slices.DeleteFunc(items, func(it item) bool {
		h, ok := held[it.Type+"/"+it.ID]
		return ok && h.VersionID >= it.VersionID && h.RemoteID != ""
	})
}

// sharedTypes are the types outside any patient's compartment: many
// patients' episodes refer to one Organization or Practitioner.
var sharedTypes = map[string]bool{"Organization": true, "Practitioner": true, "PractitionerRole": true,
	"Medication": true, "Location": true, "HealthcareService": true}

// firstShared returns the shared resources the partner has never been
// sent: deliveries for different patients run at once, and two
// conditional creates of one identifier at a partner that does not
// serialize them would make two copies.
func firstShared(items []item, held map[string]store.Delivered) []string {
	var out []string
	for _, it := range items {
		if _, ok := held[it.Type+"/"+it.ID]; !ok && sharedTypes[it.Type] {
			out = append(out, it.Type+"/"+it.ID)
		}
	}
	return out
}

// sharedWait is how long a delivery waits in place for another to finish
// sending a shared resource before it snoozes (a snoozed job waits for
// River's scheduler, about a second).
const sharedWait = 2 * time.Second

// leaseShared takes the partner-wide lease of each shared resource in refs
// (keyed by its reference where a patient id would be) or none: errBusy
// when another delivery still holds one after sharedWait. release gives
// them back.
func (w *Worker) leaseShared(ctx context.Context, at *attempt, refs []string) (release func(), err error) {
	partner := at.job.Args.PartnerID
	var got []string
	release = func() {
		for _, r := range got {
			_ = w.store.ReleaseLease(context.WithoutCancel(ctx), partner, r, at.holder)
		}
	}
	deadline := time.Now().Add(sharedWait)
	for _, r := range refs {
		for {
			ok, err := w.store.AcquireLease(ctx, partner, r, at.holder, leaseTTL)
			if err != nil {
				release()
				return nil, err
			}
			if ok {
				got = append(got, r)
				break
			}
			if time.Now().After(deadline) {
				release()
				return nil, errBusy
			}
			time.Sleep(time.Duration(10+rand.IntN(20)) * time.Millisecond)
		}
	}
	return release, nil
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
		a.Rate == b.Rate && a.Allow == b.Allow && a.TLSCertRef == b.TLSCertRef && a.TLSKeyRef == b.TLSKeyRef &&
		a.CARef == b.CARef
}

// classify turns a failed attempt into River's next step: dead letter at
// once for answers that cannot succeed, after the last attempt for the
// rest; otherwise a retry (NextRetry picks when).
func (w *Worker) classify(ctx context.Context, job *river.Job[PushArgs], err error) error {
	var se *StatusError
	code := ""
	if errors.As(err, &se) {
		code = strconv.Itoa(se.Status)
		if errors.Is(err, errReview) {
			return w.dead(ctx, job, "review", code, err)
		}
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
// 408 and 429 are retried; 409/412 never get here but as errReview (deliver
// re-sends once first).
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
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second) // the attempt's deadline may have passed
	defer cancel()
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

// record puts one request of an attempt, or an attempt that sent nothing,
// in the exchange log: ids, codes and the encrypted Bundle only.
func (w *Worker) record(ctx context.Context, at *attempt, refs []string, payload []byte, status int, took time.Duration, err error) {
	at.logged = true
	a := at.job.Args
	e := store.Exchange{Kind: "push", Direction: "out", EpisodeID: a.EpisodeID, PartnerID: a.PartnerID, Refs: refs,
		Operation: "POST transaction", Status: "ok", Attempt: at.job.Attempt, Duration: took, ErrorClass: errorClass(err)}
	if status > 0 {
		e.Code = strconv.Itoa(status)
	}
	var se *StatusError
	switch {
	case err != nil && errors.As(err, &se):
		e.Status, e.Code = "error", strconv.Itoa(se.Status)
	case err != nil:
		e.Status = "error"
	case payload == nil:
		e.Status = "unchanged"
	}
	if payload == nil { // nothing was sent
		e.Operation = "none"
	}
	// The attempt's deadline may have passed: the row is still written.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if _, lerr := w.xlog.Record(rctx, e, payload); lerr != nil {
		w.log.ErrorContext(ctx, "sync exchange log failed", "partner_id", a.PartnerID, "error", lerr.Error())
	}
}

// errorClass names the kind of failure, for the exchange log: conflict,
// throttled (429, 503), status (other answers), address, credentials,
// timeout, transport, response (unreadable answer) or gateway (ours).
func errorClass(err error) string {
	var se *StatusError
	var ue *url.Error
	switch {
	case err == nil:
		return ""
	case conflict(err):
		return "conflict"
	case errors.As(err, &se) && (se.Status == http.StatusTooManyRequests || se.Status == http.StatusServiceUnavailable):
		return "throttled"
	case errors.As(err, &se):
		return "status"
	case errors.Is(err, ErrAddress):
		return "address"
	case errors.Is(err, ErrCredentials):
		return "credentials"
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ue) && ue.Timeout():
		return "timeout"
	case errors.As(err, &ue):
		return "transport"
	case errors.Is(err, errResponse):
		return "response"
	}
	return "gateway"
}
