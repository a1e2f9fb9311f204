package exchange

import (
	"context"

	"github.com/kapgw/kapgw/internal/jobs"
	"github.com/kapgw/kapgw/internal/store"
	"github.com/kapgw/kapgw/pharmacy"
)

// Journal is the store-backed pharmacy.Journal: each message to the
// pharmacy and each callback from it becomes an exchange row.
//
// Steps decided inside the episode transaction (queued, blocked) are not
// exchanges and are left to the prescription timeline the store keeps in
// that transaction; writing them here would need a second write
// transaction while the episode's is open, which SQLite's single writer
// cannot give.
type Journal struct{ r *Recorder }

var _ pharmacy.Journal = Journal{}

// Journal returns the pharmacy journal writing through r.
func (r *Recorder) Journal() Journal { return Journal{r: r} }

// journalled are the steps that are messages on the wire.
var journalled = map[string]string{
	pharmacy.StepSent:      "",
	pharmacy.StepAccepted:  "",
	pharmacy.StepFailed:    "rejected",
	pharmacy.StepUnknown:   "unknown_outcome",
	pharmacy.StepDispensed: "",
	pharmacy.StepShipped:   "",
	pharmacy.StepDelivered: "",
	pharmacy.StepCancelled: "",
}

// Record writes one step. Steps of a delivery job are outbound, numbered by
// the job's attempt; the others are callbacks, inbound. A failure is logged
// here, since the pharmacy package only journals and never fails on it.
func (j Journal) Record(ctx context.Context, s pharmacy.Step) error {
	class, ok := journalled[s.Step]
	if !ok {
		return nil
	}
	e := store.Exchange{Kind: KindPharmacy, Direction: In, At: s.At, Status: s.Step, Code: s.Code, ErrorClass: class,
		Operation: s.Message, Refs: []string{"MedicationRequest/" + s.PrescriptionID}, EpisodeID: s.EpisodeID, PartnerID: "pharmacy", Duration: s.Duration}
	if s.MessageID != "" {
		e.Operation += " " + s.MessageID
	}
	// A delivery step names the KAP prescription; a callback names the
	// PrescriberOrderNumber, which is the MedicationRequest id.
	if n := jobs.Attempt(ctx); n > 0 {
		e.Direction, e.Attempt, e.Refs = Out, n, []string{"prescription/" + s.PrescriptionID}
	}
	if _, err := j.r.Record(ctx, e, nil); err != nil {
		j.r.log.WarnContext(ctx, "exchange not recorded", "kind", KindPharmacy, "step", s.Step, "err", err.Error())
		return err
	}
	return nil
}
