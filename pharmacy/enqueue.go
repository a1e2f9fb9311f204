package pharmacy

import (
	"context"
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
	now     func() time.Time
	sets    func() ([]*rules.Set, error) // loaded once
}

// NewPrescriptions returns the checker and queuer; jobs go through jobs.
func NewPrescriptions(jobs Inserter, journal Journal, now func() time.Time) *Prescriptions {
	return &Prescriptions{jobs: jobs, journal: journal, now: now, sets: sync.OnceValues(rules.Sets)}
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
// MedicationRequest became cancelled or stopped queues a CancelRx. An error
// rolls the episode back.
func (p *Prescriptions) AfterAccept(ctx context.Context, tx store.Tx, ep *kap.Episode, res store.ApplyResult) ([]Checked, error) {
	written := map[string]store.Action{}
	for _, e := range res.Entries {
		if e.Type == "MedicationRequest" {
			written[e.ID] = e.Action
		}
	}
	now := p.now().UTC()
	var out []Checked
	for i, rx := range ep.Prescriptions {
		action := written[mappers.ID("MedicationRequest", ep.ID, rx.ID)]
		switch rx.Status {
		case kap.RxActive:
			// Checked on every accepted change: the findings may depend on
			// other parts of the document (consents, the pharmacy). The
			// NewRx job is unique per MessageID, so it is queued once.
			c, err := p.newRx(ctx, tx, ep, i, now)
			if err != nil {
				return nil, err
			}
			out = append(out, c)
		case kap.RxCancelled, kap.RxStopped:
			if action == store.ActionUpdated {
				if err := p.cancelRx(ctx, tx, ep, i, now); err != nil {
					return nil, err
				}
			}
			// No longer active: an open Task about its findings is resolved.
			resolve := TaskArgs{Order: script.OrderNumber(ep, i), TaskKind: TaskBlocked, At: now}
			if err := p.jobs.InsertTx(ctx, tx, resolve, nil); err != nil {
				return nil, fmt.Errorf("prescription %s: %w", rx.ID, err)
			}
		}
	}
	return out, nil
}

func (p *Prescriptions) newRx(ctx context.Context, tx store.Tx, ep *kap.Episode, i int, now time.Time) (Checked, error) {
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
	c.Findings = set.Check(rules.Input{Episode: ep, Prescription: i, At: now})
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
	if rules.Blocked(c.Findings) {
		for _, f := range c.Findings {
			_ = p.journal.Record(ctx, Step{PrescriptionID: rx.ID, Message: "NewRx", Step: StepBlocked, Code: f.Code, Detail: f.Severity, At: now})
		}
		return c, nil
	}
	id := script.MessageID("NewRx", rx.ID, Issue)
	body, err := script.NewRx(ep, i, script.Envelope{From: ep.CareTeam.Organization.ID, MessageID: id, SentTime: now})
	if err != nil {
		return c, fmt.Errorf("prescription %s: %w", rx.ID, err)
	}
	if err := p.queue(ctx, tx, ep, rx.ID, "NewRx", id, body, now); err != nil {
		return c, err
	}
	c.MessageID = id
	return c, nil
}

func (p *Prescriptions) cancelRx(ctx context.Context, tx store.Tx, ep *kap.Episode, i int, now time.Time) error {
	rx := ep.Prescriptions[i]
	id := script.MessageID("CancelRx", rx.ID, Issue)
	body, err := script.CancelRx(ep, i, script.Envelope{From: ep.CareTeam.Organization.ID, MessageID: id,
		RelatesToMessageID: script.MessageID("NewRx", rx.ID, Issue), SentTime: now})
	if err != nil {
		return fmt.Errorf("prescription %s: %w", rx.ID, err)
	}
	return p.queue(ctx, tx, ep, rx.ID, "CancelRx", id, body, now)
}

func (p *Prescriptions) queue(ctx context.Context, tx store.Tx, ep *kap.Episode, rxID, kind, id string, body []byte, now time.Time) error {
	args := SendArgs{Message: kind, MessageID: id, PrescriptionID: rxID, Order: mappers.ID("MedicationRequest", ep.ID, rxID), EpisodeID: ep.ID, Body: body}
	if err := p.jobs.InsertTx(ctx, tx, args, nil); err != nil {
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
