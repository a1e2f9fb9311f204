package intake

import (
	"context"

	"github.com/kapgw/kapgw/internal/kap"
	"github.com/kapgw/kapgw/internal/store"
	"github.com/kapgw/kapgw/pharmacy"
)

// Prescriber checks the prescriptions of an accepted episode and queues
// their SCRIPT messages inside the episode's transaction
// (pharmacy.Prescriptions), so that a message is queued exactly when the
// document that calls for it commits.
type Prescriber interface {
	AfterAccept(ctx context.Context, tx store.Tx, ep *kap.Episode, res store.ApplyResult) ([]pharmacy.Checked, error)
}

// WithPrescriber makes the service send prescriptions through p. Call it
// once, before serving.
func (s *Service) WithPrescriber(p Prescriber) *Service {
	s.rx = p
	return s
}

// afterWrite returns the hook that runs the prescriber in the episode's
// transaction and keeps what it reports in *checked; nil without one.
func (s *Service) afterWrite(ep *kap.Episode, checked *[]pharmacy.Checked) store.AfterWriteFunc {
	if s.rx == nil {
		return nil
	}
	return func(ctx context.Context, tx store.Tx, res store.ApplyResult) error {
		c, err := s.rx.AfterAccept(ctx, tx, ep, res)
		*checked = c
		return err
	}
}
