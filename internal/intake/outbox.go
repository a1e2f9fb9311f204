package intake

import (
	"context"

	"github.com/kapgw/kapgw/internal/kap"
	"github.com/kapgw/kapgw/internal/store"
	"github.com/kapgw/kapgw/pharmacy"
)

// Outbox enqueues the deliveries an accepted change calls for inside the
// episode's transaction (internal/sync), so that a change is pushed exactly
// when it commits.
type Outbox interface {
	Enqueue(ctx context.Context, tx store.Tx, episodeID string) error
}

// WithOutbox makes the service enqueue partner deliveries through o. Call it
// once, before serving.
func (s *Service) WithOutbox(o Outbox) *Service {
	s.outbox = o
	return s
}

// hooks returns the prescriber hook followed by the outbox, both in the
// episode's transaction; nil when there is neither.
func (s *Service) hooks(id string, ep *kap.Episode, checked *[]pharmacy.Checked) store.AfterWriteFunc {
	rx := s.afterWrite(ep, checked)
	if s.outbox == nil {
		return rx
	}
	return func(ctx context.Context, tx store.Tx, res store.ApplyResult) error {
		if rx != nil {
			if err := rx(ctx, tx, res); err != nil {
				return err
			}
		}
		return s.outbox.Enqueue(ctx, tx, id)
	}
}
