package store

import (
	"context"
	"fmt"
	"time"
)

// Delivered is one resource a partner holds of ours.
type Delivered struct {
	Type, ID  string
	VersionID int64
	RemoteID  string // the partner's id for it
}

// DeliveredFor returns what a partner holds of the given resources, keyed
// "Type/id".
func (s *Store) DeliveredFor(ctx context.Context, partnerID string, refs []string) (map[string]Delivered, error) {
	out := make(map[string]Delivered, len(refs))
	rs, err := s.drv.query(ctx, `SELECT type, id, version_id, remote_id FROM sync_resource WHERE partner_id = $1`, partnerID)
	if err != nil {
		return nil, fmt.Errorf("read delivered to %s: %w", partnerID, err)
	}
	defer rs.Close()
	want := make(map[string]bool, len(refs))
	for _, r := range refs {
		want[r] = true
	}
	for rs.Next() {
		var d Delivered
		if err := rs.Scan(&d.Type, &d.ID, &d.VersionID, &d.RemoteID); err != nil {
			return nil, fmt.Errorf("read delivered to %s: %w", partnerID, err)
		}
		if k := d.Type + "/" + d.ID; want[k] {
			out[k] = d
		}
	}
	if err := rs.Err(); err != nil {
		return nil, fmt.Errorf("read delivered to %s: %w", partnerID, err)
	}
	return out, nil
}

// RecordDelivered records that a partner now holds these versions; a
// version never goes back.
func (s *Store) RecordDelivered(ctx context.Context, partnerID string, ds []Delivered) error {
	now := millis(s.now())
	return s.write(ctx, "record delivered to "+partnerID, func(tx txn) error {
		for _, d := range ds {
			err := tx.exec(ctx, `INSERT INTO sync_resource (partner_id, type, id, version_id, remote_id, delivered_at)
				VALUES ($1, $2, $3, $4, $5, $6)
				ON CONFLICT (partner_id, type, id) DO UPDATE SET version_id = excluded.version_id,
				remote_id = excluded.remote_id, delivered_at = excluded.delivered_at
				WHERE sync_resource.version_id <= excluded.version_id`,
				partnerID, d.Type, d.ID, d.VersionID, d.RemoteID, now)
			if err != nil {
				return err
			}
		}
		return nil
	})
}

// AcquireLease takes the delivery lease of a partner and patient for
// holder until ttl from now, and reports whether it got it: deliveries for
// one patient run one at a time, in any process. internal/sync also leases
// a shared resource's first delivery, with its "Type/id" as patientID.
func (s *Store) AcquireLease(ctx context.Context, partnerID, patientID, holder string, ttl time.Duration) (bool, error) {
	now := s.now()
	var got string
	err := s.write(ctx, "acquire sync lease", func(tx txn) error {
		err := tx.queryRow(ctx, `INSERT INTO sync_lease (partner_id, patient_id, holder, expires_at) VALUES ($1, $2, $3, $4)
			ON CONFLICT (partner_id, patient_id) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
			WHERE sync_lease.expires_at < $5 OR sync_lease.holder = excluded.holder
			RETURNING holder`, partnerID, patientID, holder, millis(now.Add(ttl)), millis(now)).Scan(&got)
		if isNoRows(err) {
			return nil
		}
		return err
	})
	return got == holder, err
}

// ReleaseLease gives the lease back if holder still has it.
func (s *Store) ReleaseLease(ctx context.Context, partnerID, patientID, holder string) error {
	return s.write(ctx, "release sync lease", func(tx txn) error {
		return tx.exec(ctx, `DELETE FROM sync_lease WHERE partner_id = $1 AND patient_id = $2 AND holder = $3`,
			partnerID, patientID, holder)
	})
}

// DeadLetter is a delivery that gave up.
type DeadLetter struct {
	ID         int64
	PartnerID  string
	EpisodeID  string
	PatientID  string
	Reason     string // a class: rejected, attempts, auth
	Code       string // the last HTTP status, if any
	Attempts   int
	At         time.Time
	ReplayedAt *time.Time
}

// AddDeadLetter records a delivery that gave up and returns its id.
func (s *Store) AddDeadLetter(ctx context.Context, d DeadLetter) (int64, error) {
	var id int64
	err := s.write(ctx, "add dead letter", func(tx txn) error {
		return tx.queryRow(ctx, `INSERT INTO sync_dead (partner_id, episode_id, patient_id, reason, code, attempts, at)
			VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id`,
			d.PartnerID, d.EpisodeID, d.PatientID, d.Reason, d.Code, d.Attempts, millis(s.now())).Scan(&id)
	})
	return id, err
}

// DeadLetters lists dead letters, newest first; open ones only unless all.
func (s *Store) DeadLetters(ctx context.Context, all bool) ([]DeadLetter, error) {
	q := `SELECT id, partner_id, episode_id, patient_id, reason, code, attempts, at, replayed_at FROM sync_dead`
	if !all {
		q += ` WHERE replayed_at IS NULL`
	}
	rs, err := s.drv.query(ctx, q+` ORDER BY id DESC`)
	if err != nil {
		return nil, fmt.Errorf("list dead letters: %w", err)
	}
	defer rs.Close()
	var out []DeadLetter
	for rs.Next() {
		var d DeadLetter
		var at int64
		var replayed *int64
		if err := rs.Scan(&d.ID, &d.PartnerID, &d.EpisodeID, &d.PatientID, &d.Reason, &d.Code, &d.Attempts, &at, &replayed); err != nil {
			return nil, fmt.Errorf("list dead letters: %w", err)
		}
		d.At, d.ReplayedAt = fromMillis(at), optTime(replayed)
		out = append(out, d)
	}
	if err := rs.Err(); err != nil {
		return nil, fmt.Errorf("list dead letters: %w", err)
	}
	return out, nil
}

// ReplayDeadLetter marks a dead letter replayed and runs enqueue in the
// same transaction; a dead letter already replayed returns false and
// enqueues nothing, so replaying twice is harmless.
func (s *Store) ReplayDeadLetter(ctx context.Context, id int64, enqueue func(tx Tx, d DeadLetter) error) (bool, error) {
	replayed := false
	err := s.write(ctx, fmt.Sprintf("replay dead letter %d", id), func(tx txn) error {
		var d DeadLetter
		err := tx.queryRow(ctx, `UPDATE sync_dead SET replayed_at = $2 WHERE id = $1 AND replayed_at IS NULL
			RETURNING id, partner_id, episode_id, patient_id`, id, millis(s.now())).
			Scan(&d.ID, &d.PartnerID, &d.EpisodeID, &d.PatientID)
		if isNoRows(err) {
			return nil
		}
		if err != nil {
			return err
		}
		replayed = true
		return enqueue(tx.public(), d)
	})
	return replayed, err
}

// SyncCounts summarizes one partner's push state for `kapgw sync status`.
type SyncCounts struct {
	PartnerID     string
	Resources     int
	LastDelivered *time.Time
	OpenDead      int
}

// SyncStatus returns the push state of every destination.
func (s *Store) SyncStatus(ctx context.Context) ([]SyncCounts, error) {
	rs, err := s.drv.query(ctx, `SELECT d.partner_id,
		(SELECT COUNT(*) FROM sync_resource r WHERE r.partner_id = d.partner_id),
		(SELECT MAX(delivered_at) FROM sync_resource r WHERE r.partner_id = d.partner_id),
		(SELECT COUNT(*) FROM sync_dead x WHERE x.partner_id = d.partner_id AND x.replayed_at IS NULL)
		FROM sync_destination d ORDER BY d.partner_id`)
	if err != nil {
		return nil, fmt.Errorf("sync status: %w", err)
	}
	defer rs.Close()
	var out []SyncCounts
	for rs.Next() {
		var c SyncCounts
		var last *int64
		if err := rs.Scan(&c.PartnerID, &c.Resources, &last, &c.OpenDead); err != nil {
			return nil, fmt.Errorf("sync status: %w", err)
		}
		c.LastDelivered = optTime(last)
		out = append(out, c)
	}
	if err := rs.Err(); err != nil {
		return nil, fmt.Errorf("sync status: %w", err)
	}
	return out, nil
}
