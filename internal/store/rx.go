package store

import (
	"context"
	"fmt"
	"time"
)

// PutResources writes resources that no episode document produces, such
// as the MedicationDispense and Task resources pharmacy callbacks create,
// in one transaction and versioned like episode resources: a resource
// whose content is unchanged gets no new version.
func (s *Store) PutResources(ctx context.Context, res []Resource) ([]Entry, error) {
	if err := checkChange(EpisodeChange{Document: []byte("-"), Resources: res}); err != nil {
		return nil, fmt.Errorf("put resources: %w", err)
	}
	tx, err := s.drv.begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("put resources: begin: %w", err)
	}
	defer func() { _ = tx.rollback(context.WithoutCancel(ctx)) }()
	now := s.now().UTC().Truncate(time.Millisecond)
	entries, batch, err := s.resourceWrites(ctx, tx, EpisodeChange{Resources: res}, now)
	if err != nil {
		return nil, fmt.Errorf("put resources: %w", err)
	}
	if err := tx.execBatch(ctx, batch); err != nil {
		return nil, fmt.Errorf("put resources: %w", err)
	}
	if err := s.writeIndex(ctx, tx, EpisodeChange{Resources: res}, entries); err != nil {
		return nil, fmt.Errorf("put resources: %w", err)
	}
	if err := tx.commit(ctx); err != nil {
		return nil, fmt.Errorf("put resources: commit: %w", err)
	}
	return entries, nil
}
