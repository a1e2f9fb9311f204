package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
)

// PullConfig is a partner whose FHIR API the gateway polls for the
// resources that matter to KAP safety, through the partner's push
// destination (same base URL and credentials).
type PullConfig struct {
	PartnerID string
	Types     []string
	Interval  time.Duration
	Disabled  bool
	UpdatedAt time.Time
}

// PutPull creates or replaces a partner's pull; the partner must have a
// push destination. enqueue, when not nil, runs in the same transaction:
// the pull's job is inserted with the pull, or neither is.
func (s *Store) PutPull(ctx context.Context, c PullConfig, enqueue func(ctx context.Context, tx Tx) error) error {
	types, err := json.Marshal(nonNil(c.Types))
	if err != nil {
		return fmt.Errorf("encode types: %w", err)
	}
	return s.write(ctx, "put pull "+c.PartnerID, func(tx txn) error {
		var one int
		err := tx.queryRow(ctx, `SELECT 1 FROM sync_destination WHERE partner_id = $1`, c.PartnerID).Scan(&one)
		if isNoRows(err) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		err = tx.exec(ctx, `INSERT INTO sync_pull (partner_id, types, interval_ms, disabled, updated_at)
			VALUES ($1, $2, $3, $4, $5)
			ON CONFLICT (partner_id) DO UPDATE SET types = excluded.types, interval_ms = excluded.interval_ms,
			disabled = excluded.disabled, updated_at = excluded.updated_at`,
			c.PartnerID, string(types), c.Interval.Milliseconds(), c.Disabled, millis(s.now()))
		if err != nil || enqueue == nil {
			return err
		}
		return enqueue(ctx, tx.public())
	})
}

// EnqueuePulls runs enqueue for every enabled pull in one transaction: how
// start-up makes sure each has its job (the job's uniqueness makes this
// harmless when it has).
func (s *Store) EnqueuePulls(ctx context.Context, enqueue func(ctx context.Context, tx Tx, c PullConfig) error) error {
	return s.write(ctx, "enqueue pulls", func(tx txn) error {
		rs, err := tx.query(ctx, `SELECT `+pullColumns+` FROM sync_pull WHERE disabled = $1 ORDER BY partner_id`, false)
		if err != nil {
			return err
		}
		var cs []PullConfig
		err = eachRow(rs, func(r rows) error {
			c, err := scanPull(r)
			cs = append(cs, c)
			return err
		})
		if err != nil {
			return err
		}
		for _, c := range cs {
			if err := enqueue(ctx, tx.public(), c); err != nil {
				return err
			}
		}
		return nil
	})
}

// Pull returns one partner's pull, or ErrNotFound.
func (s *Store) Pull(ctx context.Context, partnerID string) (PullConfig, error) {
	c, err := scanPull(s.drv.queryRow(ctx, `SELECT `+pullColumns+` FROM sync_pull WHERE partner_id = $1`, partnerID))
	if isNoRows(err) {
		return PullConfig{}, fmt.Errorf("pull of %s: %w", partnerID, ErrNotFound)
	}
	if err != nil {
		return PullConfig{}, fmt.Errorf("read pull of %s: %w", partnerID, err)
	}
	return c, nil
}

// Pulls returns every partner's pull, by partner id.
func (s *Store) Pulls(ctx context.Context) ([]PullConfig, error) {
	rs, err := s.drv.query(ctx, `SELECT `+pullColumns+` FROM sync_pull ORDER BY partner_id`)
	if err != nil {
		return nil, fmt.Errorf("list pulls: %w", err)
	}
	var out []PullConfig
	err = eachRow(rs, func(r rows) error {
		c, err := scanPull(r)
		out = append(out, c)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list pulls: %w", err)
	}
	return out, nil
}

const pullColumns = `partner_id, types, interval_ms, disabled, updated_at`

func scanPull(row scanner) (PullConfig, error) {
	var c PullConfig
	var types string
	var interval, updated int64
	if err := row.Scan(&c.PartnerID, &types, &interval, &c.Disabled, &updated); err != nil {
		return c, err
	}
	c.Interval, c.UpdatedAt = time.Duration(interval)*time.Millisecond, fromMillis(updated)
	var err error
	c.Types, err = jsonTypes(types)
	return c, err
}

// PullCursor is where the poll of one partner, patient and type got.
type PullCursor struct {
	PartnerID, PatientID, Type string
	// Cursor is the partner's lastUpdated of the last resource stored; ""
	// before the first page.
	Cursor    string
	Pulled    int
	Unmatched int
	UpdatedAt time.Time
}

// Cursor returns the cursor of one partner, patient and type: the zero
// PullCursor (Cursor "") when nothing was pulled yet.
func (s *Store) Cursor(ctx context.Context, partnerID, patientID, typ string) (PullCursor, error) {
	c := PullCursor{PartnerID: partnerID, PatientID: patientID, Type: typ}
	var updated int64
	err := s.drv.queryRow(ctx, `SELECT cursor, pulled, unmatched, updated_at FROM sync_pull_cursor
		WHERE partner_id = $1 AND patient_id = $2 AND type = $3`, partnerID, patientID, typ).
		Scan(&c.Cursor, &c.Pulled, &c.Unmatched, &updated)
	if isNoRows(err) {
		return c, nil
	}
	if err != nil {
		return c, fmt.Errorf("read pull cursor of %s %s: %w", partnerID, typ, err)
	}
	c.UpdatedAt = fromMillis(updated)
	return c, nil
}

// Cursors returns every cursor of a partner ("" for all partners).
func (s *Store) Cursors(ctx context.Context, partnerID string) ([]PullCursor, error) {
	rs, err := s.drv.query(ctx, `SELECT partner_id, patient_id, type, cursor, pulled, unmatched, updated_at
		FROM sync_pull_cursor WHERE $1 = '' OR partner_id = $1 ORDER BY partner_id, patient_id, type`, partnerID)
	if err != nil {
		return nil, fmt.Errorf("list pull cursors: %w", err)
	}
	var out []PullCursor
	err = eachRow(rs, func(r rows) error {
		var c PullCursor
		var updated int64
		if err := r.Scan(&c.PartnerID, &c.PatientID, &c.Type, &c.Cursor, &c.Pulled, &c.Unmatched, &updated); err != nil {
			return err
		}
		c.UpdatedAt = fromMillis(updated)
		out = append(out, c)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list pull cursors: %w", err)
	}
	return out, nil
}

// SharedPatient is one of our patients a partner holds, with the partner's
// id for it ("" when the push recorded none).
type SharedPatient struct {
	PatientID string
	RemoteID  string
}

// SharedPatients returns the patients pushed to a partner: every Patient
// in its sync_resource rows, with the id the partner gave it.
func (s *Store) SharedPatients(ctx context.Context, partnerID string) ([]SharedPatient, error) {
	rs, err := s.drv.query(ctx, `SELECT id, remote_id FROM sync_resource WHERE partner_id = $1 AND type = 'Patient' ORDER BY id`, partnerID)
	if err != nil {
		return nil, fmt.Errorf("list patients shared with %s: %w", partnerID, err)
	}
	var out []SharedPatient
	err = eachRow(rs, func(r rows) error {
		var p SharedPatient
		if err := r.Scan(&p.PatientID, &p.RemoteID); err != nil {
			return err
		}
		out = append(out, p)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list patients shared with %s: %w", partnerID, err)
	}
	return out, nil
}

// PatientAccessOf returns the patient_access rows of every episode of a
// patient: what decides whether a partner may still exchange the patient's
// data.
func (s *Store) PatientAccessOf(ctx context.Context, patientID string) ([]PatientAccess, error) {
	rs, err := s.drv.query(ctx, `SELECT patient_id, org_id, sharing_from, sharing_until FROM patient_access
		WHERE patient_id = $1 ORDER BY episode_id, org_id`, patientID)
	if err != nil {
		return nil, fmt.Errorf("read access of patient %s: %w", patientID, err)
	}
	var out []PatientAccess
	err = eachRow(rs, func(r rows) error {
		var a PatientAccess
		var from, until *int64
		if err := r.Scan(&a.PatientID, &a.OrgID, &from, &until); err != nil {
			return err
		}
		a.SharingFrom, a.SharingUntil = optTime(from), optTime(until)
		out = append(out, a)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read access of patient %s: %w", patientID, err)
	}
	return out, nil
}
