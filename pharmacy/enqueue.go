package pharmacy

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/riverqueue/river"

	"github.com/kapgw/kapgw/internal/kap"
	"github.com/kapgw/kapgw/internal/store"
	"github.com/kapgw/kapgw/mappers"
	"github.com/kapgw/kapgw/pharmacy/rules"
	"github.com/kapgw/kapgw/pharmacy/script"
)

// Inserter inserts a job in the transaction of the write that causes it
// (jobs.Queue).
type Inserter interface {
	InsertTx(ctx context.Context, tx store.Tx, args river.JobArgs, opts *river.InsertOpts) error
}

// Issue is the first issue of a prescription. A changed prescription is
// cancelled and re-issued under the next number, so every issue has its own
// MessageID.
const Issue = 1

// Prescriptions checks the prescriptions of an accepted episode and queues
// the SCRIPT messages they call for.
type Prescriptions struct {
	jobs    Inserter
	journal Journal
	ledger  Ledger
	// records and external, when set, feed the rules what the document
	// does not hold: other episodes' prescriptions, partner medications.
	records  PatientRecords
	external ExternalRecords
	now      func() time.Time
	sets     func() ([]*rules.Set, error) // loaded once
}

// NewPrescriptions returns the checker and queuer; jobs go through jobs.
func NewPrescriptions(jobs Inserter, journal Journal, now func() time.Time) *Prescriptions {
	return &Prescriptions{jobs: jobs, journal: journal, ledger: nopLedger{}, now: now, sets: sync.OnceValues(rules.Sets)}
}

// WithLedger returns p recording checks, messages and timeline steps in l,
// and re-issuing changed prescriptions under the next issue number.
func (p *Prescriptions) WithLedger(l Ledger) *Prescriptions {
	c := *p
	c.ledger = l
	return &c
}

// WithRecords returns p counting the patient's active ketamine
// prescriptions in other episodes (rules.Input.OtherActive) from r.
func (p *Prescriptions) WithRecords(r PatientRecords) *Prescriptions {
	c := *p
	c.records = r
	return &c
}

// WithExternal returns p warning of interactions with the medications
// partner EHRs hold for the patient (rules.Input.Medications), read from x.
func (p *Prescriptions) WithExternal(x ExternalRecords) *Prescriptions {
	c := *p
	c.external = x
	return &c
}

// Checked is what happened to one prescription of the episode.
type Checked struct {
	PrescriptionID string
	// Index is the prescription's position in the document.
	Index    int
	Findings []rules.Finding
	// MessageID is the queued message, "" when nothing was queued.
	MessageID string
}

// AfterAccept runs inside the episode's transaction (store.AfterWriteFunc)
// of every changed document: each active prescription is checked, and a
// NewRx is queued unless a rule blocks it; a prescription whose
// MedicationRequest became cancelled or stopped queues a CancelRx; a sent
// prescription whose MedicationRequest changed is cancelled and re-issued.
// An error rolls the episode back.
func (p *Prescriptions) AfterAccept(ctx context.Context, tx store.Tx, ep *kap.Episode, res store.ApplyResult) ([]Checked, error) {
	written := map[string]store.Action{}
	for _, e := range res.Entries {
		if e.Type == "MedicationRequest" {
			written[e.ID] = e.Action
		}
	}
	now := p.now().UTC()
	var facts *patientFacts // read once, when a prescription is active
	var out []Checked
	for i, rx := range ep.Prescriptions {
		order := script.OrderNumber(ep, i)
		action := written[order]
		if action == store.ActionCreated {
			st := store.RxStep{OrderID: order, PrescriptionID: rx.ID, Step: StepWritten, TraceID: traceID(ctx), At: now}
			if err := p.ledger.RecordRxTx(ctx, tx, store.RxRecord{Steps: []store.RxStep{st}}); err != nil {
				return nil, fmt.Errorf("prescription %s: %w", rx.ID, err)
			}
		}
		switch rx.Status {
		case kap.RxActive:
			// Checked on every accepted change: the findings may depend on
			// other parts of the document (consents, the pharmacy). The
			// NewRx job is unique per MessageID, so it is queued once.
			if facts == nil {
				f, err := p.facts(ctx, tx, mappers.ID("Patient", ep.Patient.ID), ep.ID)
				if err != nil {
					return nil, fmt.Errorf("prescription %s: %w", rx.ID, err)
				}
				facts = &f
			}
			c, err := p.newRx(ctx, tx, ep, i, action == store.ActionUpdated, *facts, now)
			if err != nil {
				return nil, err
			}
			out = append(out, c)
		case kap.RxCancelled, kap.RxStopped:
			if action == store.ActionUpdated {
				if err := p.cancelLatest(ctx, tx, ep, i, now); err != nil {
					return nil, err
				}
			}
			// No longer active: an open Task about its findings is resolved,
			// and it is not blocked any more.
			resolve := TaskArgs{Order: order, TaskKind: TaskBlocked, At: now}
			if err := p.jobs.InsertTx(ctx, tx, resolve, nil); err != nil {
				return nil, fmt.Errorf("prescription %s: %w", rx.ID, err)
			}
			check := &store.RxCheck{OrderID: order, PrescriptionID: rx.ID, EpisodeID: ep.ID, CheckedAt: now}
			if err := p.ledger.RecordRxTx(ctx, tx, store.RxRecord{Check: check}); err != nil {
				return nil, fmt.Errorf("prescription %s: %w", rx.ID, err)
			}
		}
	}
	return out, nil
}

func (p *Prescriptions) newRx(ctx context.Context, tx store.Tx, ep *kap.Episode, i int, changed bool, facts patientFacts, now time.Time) (Checked, error) {
	rx := ep.Prescriptions[i]
	c := Checked{PrescriptionID: rx.ID, Index: i}
	sets, err := p.sets()
	if err != nil {
		return c, fmt.Errorf("prescription %s: %w", rx.ID, err)
	}
	set, err := rules.Pick(sets, now)
	if err != nil {
		return c, fmt.Errorf("prescription %s: %w", rx.ID, err)
	}
	c.Findings = set.Check(rules.Input{Episode: ep, Prescription: i, At: now,
		OtherActive: facts.otherActive, Medications: facts.medications})
	// The prescriber's Task follows the findings: written while there are
	// any, resolved when a later document clears them.
	order := script.OrderNumber(ep, i)
	for _, task := range []TaskArgs{
		{Order: order, TaskKind: TaskBlocked, Findings: c.Findings, At: now},
		{Order: order, TaskKind: TaskAccounting, Administered: administered(ep, rx.ID), At: now},
	} {
		if err := p.jobs.InsertTx(ctx, tx, task, nil); err != nil {
			return c, fmt.Errorf("prescription %s: %w", rx.ID, err)
		}
	}
	blocked := rules.Blocked(c.Findings)
	if err := p.recordCheck(ctx, tx, ep, i, c.Findings, set, now); err != nil {
		return c, err
	}
	if blocked {
		for _, f := range c.Findings {
			_ = p.journal.Record(ctx, Step{PrescriptionID: rx.ID, Message: messageNewRx, Step: StepBlocked, Code: f.Code, Detail: f.Severity, At: now})
		}
		return c, nil
	}
	issue, err := p.issue(ctx, tx, ep, i, changed, now)
	if err != nil {
		return c, err
	}
	id := script.MessageID(messageNewRx, rx.ID, int64(issue))
	body, err := script.NewRx(ep, i, script.Envelope{From: ep.CareTeam.Organization.ID, MessageID: id, SentTime: now})
	if err != nil {
		return c, fmt.Errorf("prescription %s: %w", rx.ID, err)
	}
	if err := p.queue(ctx, tx, ep, i, messageNewRx, id, issue, body, now); err != nil {
		return c, err
	}
	c.MessageID = id
	return c, nil
}

// issue returns the issue number the NewRx goes out under: the first, or
// the one already sent, or (when the sent prescription changed) the next,
// after queueing the CancelRx of the one sent. Signed bytes never change.
func (p *Prescriptions) issue(ctx context.Context, tx store.Tx, ep *kap.Episode, i int, changed bool, now time.Time) (int, error) {
	rx := ep.Prescriptions[i]
	last, ok, err := p.ledger.LatestRxMessageTx(ctx, tx, script.OrderNumber(ep, i), messageNewRx)
	if err != nil {
		return 0, fmt.Errorf("prescription %s: %w", rx.ID, err)
	}
	if !ok {
		return Issue, nil
	}
	if !changed {
		return last.Issue, nil
	}
	if last.Status != statusFailedMsg {
		if err := p.cancelRx(ctx, tx, ep, i, last.Issue, now); err != nil {
			return 0, err
		}
	}
	st := store.RxStep{OrderID: script.OrderNumber(ep, i), PrescriptionID: rx.ID, MessageID: last.MessageID, Message: messageNewRx,
		Step: StepReissued, Detail: fmt.Sprint(last.Issue + 1), TraceID: traceID(ctx), At: now}
	if err := p.ledger.RecordRxTx(ctx, tx, store.RxRecord{Steps: []store.RxStep{st}}); err != nil {
		return 0, fmt.Errorf("prescription %s: %w", rx.ID, err)
	}
	return last.Issue + 1, nil
}

// recordCheck keeps the check as the prescription's latest and adds it
// (and each finding) to the timeline.
func (p *Prescriptions) recordCheck(ctx context.Context, tx store.Tx, ep *kap.Episode, i int, findings []rules.Finding, set *rules.Set, now time.Time) error {
	rx := ep.Prescriptions[i]
	order := script.OrderNumber(ep, i)
	blocked := rules.Blocked(findings)
	js, err := json.Marshal(nonNilFindings(findings))
	if err != nil {
		return fmt.Errorf("prescription %s: findings: %w", rx.ID, err)
	}
	detail := checkDetailClear
	switch {
	case blocked:
		detail = checkDetailBlocked
	case len(findings) > 0:
		detail = checkDetailWarned
	}
	trace := traceID(ctx)
	rec := store.RxRecord{
		Check: &store.RxCheck{OrderID: order, PrescriptionID: rx.ID, EpisodeID: ep.ID, Blocked: blocked, Findings: js,
			RuleSet: set.Version, CheckedAt: now},
		Steps: []store.RxStep{{OrderID: order, PrescriptionID: rx.ID, Step: StepChecked, Code: set.Version, Detail: detail, TraceID: trace, At: now}},
	}
	for _, f := range findings {
		step := StepWarned
		if f.Severity == rules.Block {
			step = StepBlocked
		}
		rec.Steps = append(rec.Steps, store.RxStep{OrderID: order, PrescriptionID: rx.ID, Step: step, Code: f.Code, Detail: f.Expression, TraceID: trace, At: now})
	}
	if err := p.ledger.RecordRxTx(ctx, tx, rec); err != nil {
		return fmt.Errorf("prescription %s: %w", rx.ID, err)
	}
	return nil
}

func nonNilFindings(f []rules.Finding) []rules.Finding {
	if f == nil {
		return []rules.Finding{}
	}
	return f
}

// cancelLatest cancels the latest issue sent of a prescription that became
// cancelled or stopped (issue 1 when none was archived).
func (p *Prescriptions) cancelLatest(ctx context.Context, tx store.Tx, ep *kap.Episode, i int, now time.Time) error {
	last, ok, err := p.ledger.LatestRxMessageTx(ctx, tx, script.OrderNumber(ep, i), messageNewRx)
	if err != nil {
		return fmt.Errorf("prescription %s: %w", ep.Prescriptions[i].ID, err)
	}
	issue := Issue
	if ok {
		issue = last.Issue
	}
	return p.cancelRx(ctx, tx, ep, i, issue, now)
}

func (p *Prescriptions) cancelRx(ctx context.Context, tx store.Tx, ep *kap.Episode, i, issue int, now time.Time) error {
	rx := ep.Prescriptions[i]
	id := script.MessageID(messageCancelRx, rx.ID, int64(issue))
	body, err := script.CancelRx(ep, i, script.Envelope{From: ep.CareTeam.Organization.ID, MessageID: id,
		RelatesToMessageID: script.MessageID(messageNewRx, rx.ID, int64(issue)), SentTime: now})
	if err != nil {
		return fmt.Errorf("prescription %s: %w", rx.ID, err)
	}
	return p.queue(ctx, tx, ep, i, messageCancelRx, id, issue, body, now)
}

func (p *Prescriptions) queue(ctx context.Context, tx store.Tx, ep *kap.Episode, i int, kind, id string, issue int, body []byte, now time.Time) error {
	rxID, order := ep.Prescriptions[i].ID, script.OrderNumber(ep, i)
	trace := traceID(ctx)
	args := SendArgs{Message: kind, MessageID: id, PrescriptionID: rxID, Order: order, EpisodeID: ep.ID, Body: body, TraceID: trace}
	if err := p.jobs.InsertTx(ctx, tx, args, nil); err != nil {
		return fmt.Errorf("prescription %s: %w", rxID, err)
	}
	rec := store.RxRecord{
		Messages: []store.RxMessage{{MessageID: id, OrderID: order, PrescriptionID: rxID, EpisodeID: ep.ID, Kind: kind, Issue: issue,
			Body: body, Status: statusQueued, CreatedAt: now}},
		Steps: []store.RxStep{{OrderID: order, PrescriptionID: rxID, MessageID: id, Message: kind, Step: StepQueued, TraceID: trace, At: now}},
	}
	if err := p.ledger.RecordRxTx(ctx, tx, rec); err != nil {
		return fmt.Errorf("prescription %s: %w", rxID, err)
	}
	_ = p.journal.Record(ctx, Step{PrescriptionID: rxID, MessageID: id, Message: kind, Step: StepQueued, At: now})
	return nil
}

// administered counts the units (dose and booster) finished dosing sessions
// gave from prescription rxID.
func administered(ep *kap.Episode, rxID string) int {
	n := 0
	for _, s := range ep.Sessions {
		if s.Status != kap.SessionFinished || s.Dose == nil || s.Dose.PrescriptionID != rxID {
			continue
		}
		n += s.Dose.Units
		if s.Dose.Booster != nil {
			n += s.Dose.Booster.Units
		}
	}
	return n
}
