// Package sync pushes every change a partner EHR may see to the partner's
// FHIR API, with the guarantees of an integration engine: the delivery is a
// River job inserted in the episode's own transaction (a transactional
// outbox), deliveries for one patient run one at a time and always send the
// current versions, and each is a transaction Bundle of conditional updates
// keyed on identifiers, so a replay or a retry after a lost answer updates
// the same copy at the partner.
//
// It also pulls (pull.go): per partner, a periodic job reads the resources
// that matter to KAP safety (medications, allergies, conditions,
// observations) for the patients the partner shares, from a _lastUpdated
// cursor, and stores them as our patient's resources with a Provenance
// naming the partner.
package sync

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/riverqueue/river"

	"github.com/kapgw/kapgw/internal/store"
)

// PushArgs is one delivery: the current state of an episode to a partner.
type PushArgs struct {
	PartnerID string `json:"partner_id"`
	EpisodeID string `json:"episode_id"`
	PatientID string `json:"patient_id"`
}

// Kind names the River job kind.
func (PushArgs) Kind() string { return "sync_push" }

// Inserter inserts a job in the episode's transaction (jobs.Queue).
type Inserter interface {
	InsertTx(ctx context.Context, tx store.Tx, args river.JobArgs, opts *river.InsertOpts) error
}

// DestinationReader lists destinations and access inside a transaction.
type DestinationReader interface {
	DestinationsTx(ctx context.Context, tx store.Tx) ([]store.Destination, error)
	PatientAccessTx(ctx context.Context, tx store.Tx, episodeID string) ([]store.PatientAccess, error)
}

// Outbox enqueues deliveries in the transaction of the change that causes
// them.
type Outbox struct {
	store       DestinationReader
	jobs        Inserter
	now         func() time.Time
	maxAttempts int
}

// NewOutbox returns an outbox; maxAttempts bounds each delivery's attempts
// before it goes to the dead letters (default 10).
func NewOutbox(st DestinationReader, jobs Inserter, now func() time.Time, maxAttempts int) *Outbox {
	if maxAttempts <= 0 {
		maxAttempts = 10
	}
	return &Outbox{store: st, jobs: jobs, now: now, maxAttempts: maxAttempts}
}

// Enqueue inserts, in tx, one delivery of the episode to every enabled
// partner that may see its patient now: one of the partner's organizations
// serves the episode under a current data-sharing consent.
func (o *Outbox) Enqueue(ctx context.Context, tx store.Tx, episodeID string) error {
	dests, err := o.store.DestinationsTx(ctx, tx)
	if err != nil || len(dests) == 0 {
		return err
	}
	access, err := o.store.PatientAccessTx(ctx, tx, episodeID)
	if err != nil {
		return err
	}
	now := o.now()
	for _, d := range dests {
		patient, ok := visible(d, access, now)
		if !ok {
			continue
		}
		args := PushArgs{PartnerID: d.PartnerID, EpisodeID: episodeID, PatientID: patient}
		if err := o.jobs.InsertTx(ctx, tx, args, o.InsertOpts()); err != nil {
			return fmt.Errorf("enqueue push to %s: %w", d.PartnerID, err)
		}
	}
	return nil
}

// InsertOpts are the options of every delivery job.
func (o *Outbox) InsertOpts() *river.InsertOpts {
	return &river.InsertOpts{MaxAttempts: o.maxAttempts}
}

// visible returns the patient of the episode when the destination's partner
// may see it at now.
func visible(d store.Destination, access []store.PatientAccess, now time.Time) (string, bool) {
	if d.Disabled || d.ClientDisabled {
		return "", false
	}
	for _, a := range access {
		if !slices.Contains(d.Orgs, a.OrgID) || a.SharingFrom == nil || a.SharingFrom.After(now) {
			continue
		}
		if a.SharingUntil != nil && !a.SharingUntil.After(now) {
			continue
		}
		return a.PatientID, true
	}
	return "", false
}
