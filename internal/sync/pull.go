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
	"strings"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/kapgw/kapgw/internal/store"
	"github.com/kapgw/kapgw/mappers"
)

// PullTypes are the resource types a pull may ask for: what matters to
// KAP safety (current medications, allergies, conditions, blood pressure
// and scores recorded elsewhere).
var PullTypes = []string{"AllergyIntolerance", "Condition", "MedicationRequest", "MedicationStatement", "Observation"}

// PullArgs is one partner's pull: a long-lived job that polls the partner
// and then snoozes for the pull's interval, so it recurs on either River
// driver without a periodic-job scheduler. Disabling the pull ends it.
type PullArgs struct {
	PartnerID string `json:"partner_id"`
}

// Kind names the River job kind.
func (PullArgs) Kind() string { return "sync_pull" }

// PullInsertOpts make a partner's pull job unique among live jobs, so
// enabling a pull twice, or at every start-up, keeps one job.
func PullInsertOpts() *river.InsertOpts {
	return &river.InsertOpts{MaxAttempts: 25, UniqueOpts: river.UniqueOpts{ByArgs: true, ByState: []rivertype.JobState{
		rivertype.JobStateAvailable, rivertype.JobStatePending, rivertype.JobStateRetryable,
		rivertype.JobStateRunning, rivertype.JobStateScheduled}}}
}

// PullStore is what a pull reads and writes.
type PullStore interface {
	Pull(ctx context.Context, partnerID string) (store.PullConfig, error)
	Destination(ctx context.Context, partnerID string) (store.Destination, error)
	SharedPatients(ctx context.Context, partnerID string) ([]store.SharedPatient, error)
	Cursor(ctx context.Context, partnerID, patientID, typ string) (store.PullCursor, error)
	StorePulled(ctx context.Context, p store.PullPage) (store.PullResult, error)
	Read(ctx context.Context, typ, id string) (store.Version, error)
	PatientAccessOf(ctx context.Context, patientID string) ([]store.PatientAccess, error)
}

// PullOptions tune a PullWorker; zero fields take the defaults.
type PullOptions struct {
	// SystemBase is the base of the gateway's identifier systems
	// (mappers.DefaultSystemBase when empty).
	SystemBase string
	// PageSize is the _count of each search (default 100).
	PageSize int
	// Attempts bounds the tries of one request (default 5).
	Attempts int
	// Backoff spaces the tries (default 1s doubling to 30s, full jitter);
	// a Retry-After is honoured up to Backoff.Cap.
	Backoff Backoff
}

// PullWorker works PullArgs jobs: it polls each partner's FHIR API for
// changes to the patients pushed to it and stores them as external
// resources of our patients.
type PullWorker struct {
	river.WorkerDefaults[PullArgs]
	store PullStore
	push  *Worker // partner clients: guarded dialer, token cache, limits
	xlog  ExchangeLog
	log   *slog.Logger
	now   func() time.Time
	opt   PullOptions
}

// NewPullWorker returns the pull worker. It reaches partners through the
// push worker's clients (the same SSRF-guarded dialer and token cache) and
// records every request in xlog.
func NewPullWorker(st PullStore, push *Worker, xlog ExchangeLog, log *slog.Logger, now func() time.Time, o PullOptions) *PullWorker {
	if o.SystemBase == "" {
		o.SystemBase = mappers.DefaultSystemBase
	}
	o.SystemBase = strings.TrimSuffix(o.SystemBase, "/")
	if o.PageSize <= 0 {
		o.PageSize = 100
	}
	if o.Attempts <= 0 {
		o.Attempts = 5
	}
	if o.Backoff.Base <= 0 {
		o.Backoff.Base = time.Second
	}
	if o.Backoff.Cap <= 0 {
		o.Backoff.Cap = 30 * time.Second
	}
	return &PullWorker{store: st, push: push, xlog: xlog, log: log, now: now, opt: o}
}

// PullTimeout bounds one run of a pull job.
const PullTimeout = 10 * time.Minute

// Timeout bounds one run of a pull job.
func (w *PullWorker) Timeout(*river.Job[PullArgs]) time.Duration { return PullTimeout }

// Work polls the partner once and snoozes until the next poll. A partner
// that fails is retried at the next poll: the cursors only move past what
// was stored.
func (w *PullWorker) Work(ctx context.Context, job *river.Job[PullArgs]) error {
	cfg, err := w.store.Pull(ctx, job.Args.PartnerID)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if cfg.Disabled {
		return nil // enabling again inserts a new job
	}
	sum, err := w.Pull(ctx, job.Args.PartnerID)
	if err != nil {
		w.log.WarnContext(ctx, "sync pull failed", "partner_id", cfg.PartnerID, "job_id", job.ID, "error_class", errorClass(err))
	} else {
		w.log.InfoContext(ctx, "sync pull done", "partner_id", cfg.PartnerID, "job_id", job.ID,
			"stored", sum.Stored, "unchanged", sum.Unchanged, "unmatched", sum.Unmatched, "ours", sum.Ours, "withheld", sum.Withheld, "pages", sum.Pages, "failed", sum.Failed)
	}
	return river.JobSnooze(max(cfg.Interval, time.Second))
}

// PullSummary counts what one poll of a partner did.
type PullSummary struct {
	Pages     int // search pages read
	Stored    int // resources created or updated
	Unchanged int // resources re-pulled with the same content
	Unmatched int // resources whose subject was not the patient: reported, not stored
	Ours      int // our own resources, pushed to the partner: skipped
	Withheld  int // patients the partner may not see now (no consent, revoked): not pulled
	Failed    int // patient and type searches that failed (retried at the next poll)
}

// Pull polls the partner once: every type of its pull, for every patient
// pushed to it, from each cursor to the end. A search that fails is
// counted and logged and the others go on; the error returned is the
// first such failure, or one that stopped the whole poll.
func (w *PullWorker) Pull(ctx context.Context, partnerID string) (PullSummary, error) {
	var sum PullSummary
	cfg, err := w.store.Pull(ctx, partnerID)
	if err != nil {
		return sum, err
	}
	d, err := w.store.Destination(ctx, partnerID)
	if err != nil {
		return sum, err
	}
	if d.Disabled || d.ClientDisabled {
		return sum, nil
	}
	c, err := w.push.client(d)
	if err != nil {
		return sum, err
	}
	patients, err := w.store.SharedPatients(ctx, partnerID)
	if err != nil {
		return sum, err
	}
	var first error
	for _, p := range patients {
		access, err := w.store.PatientAccessOf(ctx, p.PatientID)
		if err != nil {
			return sum, err
		}
		if !mayExchange(d, access, w.now()) {
			sum.Withheld++
			continue
		}
		err = w.pullPatient(ctx, c, d, cfg.Types, p, &sum)
		if err != nil && first == nil {
			first = err
		}
	}
	return sum, first
}

// mayExchange reports whether the partner may exchange the patient's data
// at now, by the rule the FHIR API's reads follow (store.Access): one of
// the partner's organizations serves the patient under a consent in
// force, and no later revocation, in any episode, has taken effect.
func mayExchange(d store.Destination, access []store.PatientAccess, now time.Time) bool {
	if d.Disabled || d.ClientDisabled {
		return false
	}
	for _, a := range access {
		if !slices.Contains(d.Orgs, a.OrgID) || a.SharingFrom == nil || a.SharingFrom.After(now) ||
			a.SharingUntil != nil && !a.SharingUntil.After(now) {
			continue
		}
		revoked := slices.ContainsFunc(access, func(x store.PatientAccess) bool {
			return x.SharingUntil != nil && !x.SharingUntil.After(now) && x.SharingUntil.After(*a.SharingFrom)
		})
		if !revoked {
			return true
		}
	}
	return false
}

// pullPatient pulls every type for one patient.
func (w *PullWorker) pullPatient(ctx context.Context, c *partnerClient, d store.Destination, types []string, p store.SharedPatient, sum *PullSummary) error {
	remote, err := w.remotePatient(ctx, c, d, p)
	if err != nil {
		sum.Failed += len(types)
		w.log.WarnContext(ctx, "sync pull: partner patient unknown", "partner_id", d.PartnerID, "patient_id", p.PatientID,
			"error_class", errorClass(err))
		return err
	}
	var first error
	for _, typ := range types {
		if !slices.Contains(PullTypes, typ) {
			continue
		}
		if err := w.pullType(ctx, c, d, p.PatientID, remote, typ, sum); err != nil {
			sum.Failed++
			w.log.WarnContext(ctx, "sync pull search failed", "partner_id", d.PartnerID, "patient_id", p.PatientID,
				"type", typ, "error_class", errorClass(err))
			if first == nil {
				first = err
			}
		}
	}
	return first
}

// errNoRemotePatient reports a patient the partner holds no unique copy of.
var errNoRemotePatient = errors.New("partner holds no single patient with our identifier")

// remotePatient returns the partner's id for our patient: the one the push
// recorded, else the single Patient the partner finds by our patient
// identifier. It never guesses.
func (w *PullWorker) remotePatient(ctx context.Context, c *partnerClient, d store.Destination, p store.SharedPatient) (string, error) {
	if p.RemoteID != "" {
		return p.RemoteID, nil
	}
	v, err := w.store.Read(ctx, "Patient", p.PatientID)
	if err != nil {
		return "", err
	}
	ident, ok := patientIdentifier(v.Body, w.opt.SystemBase+"/sid/patient")
	if !ok {
		return "", errNoRemotePatient
	}
	u := d.BaseURL + "/Patient?" + url.Values{"identifier": {ident}}.Encode()
	body, err := w.get(ctx, c, d.PartnerID, p.PatientID, "Patient", u)
	if err != nil {
		return "", err
	}
	page, err := parsePage(body)
	if err != nil {
		return "", err
	}
	var ids []string
	for _, e := range page.entries {
		if e.Type == "Patient" && e.ID != "" {
			ids = append(ids, e.ID)
		}
	}
	if len(ids) != 1 {
		return "", errNoRemotePatient
	}
	return ids[0], nil
}

// pullType pulls one type for one patient from its cursor to the end,
// storing each page (and advancing the cursor) before the next is asked.
// Each page is asked as a keyset, _lastUpdated=ge{cursor}, rather than by
// following the partner's next link: a partner that pages by offset would
// otherwise skip the resource that shifts across a page boundary when
// another is updated mid-run. ge re-reads the resources at the cursor's
// instant (stored again without a new version), so a resource committed
// later with the same timestamp is not missed either. Only when a page
// does not move the cursor (a full page of one instant) is the next link
// followed.
func (w *PullWorker) pullType(ctx context.Context, c *partnerClient, d store.Destination, patientID, remote, typ string, sum *PullSummary) error {
	cur, err := w.store.Cursor(ctx, d.PartnerID, patientID, typ)
	if err != nil {
		return err
	}
	high, _ := time.Parse(time.RFC3339Nano, cur.Cursor) // the cursor never moves back
	next := pullURL(d.BaseURL, typ, remote, cur.Cursor, w.opt.PageSize)
	for next != "" {
		body, err := w.get(ctx, c, d.PartnerID, patientID, typ, next)
		if err != nil {
			return err
		}
		sum.Pages++
		page, err := parsePage(body)
		if err != nil {
			return err
		}
		before := high
		if err := w.storePage(ctx, d, patientID, remote, typ, page, &high, sum); err != nil {
			return err
		}
		switch {
		case page.next == "":
			return nil
		case high.After(before):
			if cur, err = w.store.Cursor(ctx, d.PartnerID, patientID, typ); err != nil {
				return err
			}
			next = pullURL(d.BaseURL, typ, remote, cur.Cursor, w.opt.PageSize)
		default:
			if next, err = sameOrigin(d.BaseURL, page.next); err != nil {
				return err
			}
		}
	}
	return nil
}

// pullURL is the search for typ of the partner's patient remote changed at
// or after cursor (every one when cursor is empty), oldest first.
func pullURL(base, typ, remote, cursor string, pageSize int) string {
	q := url.Values{"patient": {remote}, "_sort": {"_lastUpdated"}, "_count": {strconv.Itoa(pageSize)}}
	if cursor != "" {
		q.Set("_lastUpdated", "ge"+cursor)
	}
	return base + "/" + typ + "?" + q.Encode()
}

// storePage rewrites the page's resources for our patient and stores
// them, with the page's Provenance and cursor, in one transaction; the
// resources of another subject are reported and left out. The cursor
// moves to the page's newest lastUpdated when that is after high, which
// then follows it.
func (w *PullWorker) storePage(ctx context.Context, d store.Destination, patientID, remote, typ string, page searchPage, high *time.Time, sum *PullSummary) error {
	pp := store.PullPage{PartnerID: d.PartnerID, PatientID: patientID, Type: typ}
	var unmatched []string
	cursor := *high
	for _, e := range page.entries {
		if e.Type != typ {
			continue // an included or OperationOutcome entry
		}
		if t, err := time.Parse(time.RFC3339Nano, e.LastUpdated); err == nil && t.After(cursor) {
			cursor, pp.Cursor = t, e.LastUpdated
		}
		if e.ours(w.opt.SystemBase + "/sid/") {
			sum.Ours++
			continue
		}
		if !e.about(remote) {
			unmatched = append(unmatched, typ+"/"+e.ID)
			continue
		}
		r, err := w.rewrite(d, patientID, e)
		if err != nil {
			return err
		}
		pp.Resources = append(pp.Resources, r)
	}
	if len(unmatched) > 0 {
		w.reportUnmatched(ctx, d.PartnerID, patientID, unmatched)
	}
	if len(pp.Resources) == 0 && pp.Cursor == "" {
		return nil
	}
	pp.Unmatched = len(unmatched)
	pp.Provenance = w.provenance(d, patientID, pp.Resources)
	res, err := w.store.StorePulled(ctx, pp)
	if err != nil {
		return err
	}
	*high = cursor
	sum.Unmatched += len(unmatched)
	for _, e := range res.Entries {
		if e.Action == store.ActionUnchanged {
			sum.Unchanged++
		} else {
			sum.Stored++
		}
	}
	return nil
}

// reportUnmatched logs, by the partner's ids only, the resources whose
// subject is not the patient searched for, and records them in the
// exchange log with error class unmatched.
func (w *PullWorker) reportUnmatched(ctx context.Context, partnerID, patientID string, refs []string) {
	w.log.WarnContext(ctx, "sync pull: resources not about the patient, not stored", "partner_id", partnerID,
		"patient_id", patientID, "remote_refs", refs)
	e := store.Exchange{Kind: "pull", Direction: "in", PartnerID: partnerID, Refs: refs, Operation: "match subject",
		Status: "error", ErrorClass: "unmatched"}
	if _, err := w.xlog.Record(ctx, e, nil); err != nil {
		w.log.ErrorContext(ctx, "sync exchange log failed", "partner_id", partnerID, "error", err.Error())
	}
}

// sameOrigin returns next if it is on the base URL's scheme and host (the
// token is never sent elsewhere), "" if there is none.
func sameOrigin(base, next string) (string, error) {
	if next == "" {
		return "", nil
	}
	b, err := url.Parse(base)
	if err != nil {
		return "", fmt.Errorf("%w: base URL", ErrAddress)
	}
	n, err := url.Parse(next)
	if err != nil || n.Scheme != b.Scheme || n.Host != b.Host || n.User != nil {
		return "", fmt.Errorf("%w: next link off the partner's origin", ErrAddress)
	}
	return n.String(), nil
}

// get reads one search page, retrying what can succeed later: 5xx, 408,
// 429 (after its Retry-After), 401 (with a new token), timeouts and
// connection failures. Every try is in the exchange log.
func (w *PullWorker) get(ctx context.Context, c *partnerClient, partnerID, patientID, typ, u string) ([]byte, error) {
	for attempt := 1; ; attempt++ {
		start := w.now()
		body, status, err := c.get(ctx, u)
		w.record(ctx, partnerID, patientID, typ, attempt, status, w.now().Sub(start), body, err)
		if err == nil {
			return body, nil
		}
		if attempt >= w.opt.Attempts || !retryablePull(err) {
			return nil, err
		}
		select {
		case <-time.After(w.wait(attempt, err)):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// retryablePull reports whether a failed GET may succeed if tried again:
// everything but a refused address, unusable credentials, a cancelled
// context and a 4xx other than 401, 408 and 429.
func retryablePull(err error) bool {
	var se *StatusError
	switch {
	case errors.As(err, &se):
		return se.Status >= 500 || se.Status == http.StatusRequestTimeout ||
			se.Status == http.StatusTooManyRequests || se.Status == http.StatusUnauthorized
	case errors.Is(err, ErrAddress), errors.Is(err, ErrCredentials), errors.Is(err, context.Canceled):
		return false
	}
	return true
}

// wait is the pause before try attempt+1: the Retry-After when the partner
// gave one, else full jitter under a capped exponential ceiling.
func (w *PullWorker) wait(attempt int, err error) time.Duration {
	var se *StatusError
	if errors.As(err, &se) && se.RetryAfter > 0 {
		return min(se.RetryAfter, w.opt.Backoff.Cap)
	}
	ceil := w.opt.Backoff.Base << min(attempt, 30)
	if ceil <= 0 || ceil > w.opt.Backoff.Cap {
		ceil = w.opt.Backoff.Cap
	}
	return time.Duration(rand.Int64N(int64(ceil) + 1))
}

// record puts one GET in the exchange log: ids, codes and the encrypted
// page.
func (w *PullWorker) record(ctx context.Context, partnerID, patientID, typ string, attempt, status int, took time.Duration, body []byte, err error) {
	e := store.Exchange{Kind: "pull", Direction: "in", PartnerID: partnerID, Refs: []string{"Patient/" + patientID},
		Operation: "GET " + typ + " search", Status: "ok", Attempt: attempt, Duration: took, ErrorClass: errorClass(err)}
	if status > 0 {
		e.Code = strconv.Itoa(status)
	}
	if err != nil {
		e.Status, body = "error", nil
	}
	if _, lerr := w.xlog.Record(ctx, e, body); lerr != nil {
		w.log.ErrorContext(ctx, "sync exchange log failed", "partner_id", partnerID, "error", lerr.Error())
	}
}
