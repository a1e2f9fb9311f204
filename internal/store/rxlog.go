package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// RxMessage is one SCRIPT message archived exactly as it is sent. Body is
// the signed bytes (PHI); JWS is the detached signature of the last
// attempt.
type RxMessage struct {
	MessageID string
	// OrderID is the MedicationRequest id, the PrescriberOrderNumber.
	OrderID        string
	PrescriptionID string
	EpisodeID      string
	Kind           string // NewRx, CancelRx
	Issue          int
	Body           []byte
	JWS            string
	Status         string // queued, sent, accepted, failed, unknown
	Code           string
	Attempts       int
	CreatedAt      time.Time
	UpdatedAt      time.Time
}

// RxStep is one event of a prescription's timeline. It holds ids and codes,
// never patient data.
type RxStep struct {
	Seq            int64
	OrderID        string
	PrescriptionID string
	MessageID      string
	Message        string
	Step           string
	Code           string
	Detail         string
	TraceID        string
	At             time.Time
}

// RxCheck is the latest rule check of a prescription. Findings is the JSON
// array of its rule findings.
type RxCheck struct {
	OrderID        string
	PrescriptionID string
	EpisodeID      string
	Blocked        bool
	Findings       json.RawMessage
	RuleSet        string
	CheckedAt      time.Time
}

// RxRecord is what the prescription hook records in the episode's
// transaction: the check, the messages it queued and the timeline steps.
type RxRecord struct {
	Check    *RxCheck
	Messages []RxMessage
	Steps    []RxStep
}

// RecordRxTx writes r in the episode's transaction, so the records commit
// or roll back with the document. A message already archived (a re-sent
// document) is kept as it is.
func (s *Store) RecordRxTx(ctx context.Context, tx Tx, r RxRecord) error {
	q := tx.querier()
	if c := r.Check; c != nil {
		findings := string(c.Findings)
		if findings == "" {
			findings = "[]"
		}
		err := q.exec(ctx, `INSERT INTO rx_check (order_id, prescription_id, episode_id, blocked, findings, rule_set, checked_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7)
			ON CONFLICT (order_id) DO UPDATE SET prescription_id = excluded.prescription_id, episode_id = excluded.episode_id,
				blocked = excluded.blocked, findings = excluded.findings, rule_set = excluded.rule_set, checked_at = excluded.checked_at`,
			c.OrderID, c.PrescriptionID, c.EpisodeID, c.Blocked, findings, c.RuleSet, millis(c.CheckedAt))
		if err != nil {
			return fmt.Errorf("record rx check %s: %w", c.OrderID, err)
		}
	}
	for _, m := range r.Messages {
		err := q.exec(ctx, `INSERT INTO rx_message (message_id, order_id, prescription_id, episode_id, kind, issue, body, status, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9) ON CONFLICT (message_id) DO NOTHING`,
			m.MessageID, m.OrderID, m.PrescriptionID, m.EpisodeID, m.Kind, m.Issue, m.Body, m.Status, millis(m.CreatedAt))
		if err != nil {
			return fmt.Errorf("archive rx message %s: %w", m.MessageID, err)
		}
	}
	return insertSteps(ctx, q, r.Steps)
}

// RxAttempt is the outcome of one delivery attempt of an archived message.
type RxAttempt struct {
	MessageID string
	// JWS, when set, replaces the stored signature; Counted adds one to
	// the attempts.
	JWS     string
	Counted bool
	Status  string
	Code    string
	At      time.Time
	Steps   []RxStep
}

// RecordRxAttempt updates an archived message with one attempt's outcome
// and appends its steps, in one transaction.
func (s *Store) RecordRxAttempt(ctx context.Context, a RxAttempt) error {
	inc := 0
	if a.Counted {
		inc = 1
	}
	return s.write(ctx, "record rx attempt "+a.MessageID, func(tx txn) error {
		err := tx.exec(ctx, `UPDATE rx_message SET jws = CASE WHEN $2 = '' THEN jws ELSE $2 END, attempts = attempts + $3,
			status = $4, code = $5, updated_at = $6 WHERE message_id = $1`,
			a.MessageID, a.JWS, inc, a.Status, a.Code, millis(a.At))
		if err != nil {
			return err
		}
		return insertSteps(ctx, tx, a.Steps)
	})
}

// RecordRxSteps appends timeline steps outside any episode transaction.
func (s *Store) RecordRxSteps(ctx context.Context, steps []RxStep) error {
	return s.write(ctx, "record rx steps", func(tx txn) error { return insertSteps(ctx, tx, steps) })
}

func insertSteps(ctx context.Context, q querier, steps []RxStep) error {
	for _, st := range steps {
		err := q.exec(ctx, `INSERT INTO rx_step (order_id, prescription_id, message_id, message, step, code, detail, trace_id, at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
			st.OrderID, st.PrescriptionID, st.MessageID, st.Message, st.Step, st.Code, st.Detail, st.TraceID, millis(st.At))
		if err != nil {
			return fmt.Errorf("record rx step %s: %w", st.Step, err)
		}
	}
	return nil
}

// ErrDuplicateEvent reports a pharmacy callback event id already applied.
var ErrDuplicateEvent = errors.New("event already applied")

// RxEvent is one pharmacy callback to apply once.
type RxEvent struct {
	EventID string
	OrderID string
	Type    string
	At      time.Time
	// Lock lists the "Type/id" of every resource Apply may read or write;
	// they are locked for the transaction, so two events for one order
	// apply one after the other.
	Lock []string
	// Apply gets the current bodies of the locked resources that exist
	// (keyed "Type/id") and returns the resources to write and the steps
	// to record.
	Apply func(cur map[string][]byte) ([]Resource, []RxStep, error)
}

// ApplyRxEvent applies e in one transaction: it claims the event id
// (ErrDuplicateEvent when it was applied before), locks e.Lock, and writes
// what e.Apply returns, versioned and indexed like PutResources.
func (s *Store) ApplyRxEvent(ctx context.Context, e RxEvent) error {
	return s.write(ctx, "apply rx event", func(tx txn) error {
		var got string
		err := tx.queryRow(ctx, `INSERT INTO rx_event (event_id, order_id, type, received_at) VALUES ($1, $2, $3, $4)
			ON CONFLICT (event_id) DO NOTHING RETURNING event_id`, e.EventID, e.OrderID, e.Type, millis(e.At)).Scan(&got)
		if isNoRows(err) {
			return ErrDuplicateEvent
		}
		if err != nil {
			return fmt.Errorf("claim event: %w", err)
		}
		cur, err := s.lockedBodies(ctx, tx, e.Lock)
		if err != nil {
			return err
		}
		res, steps, err := e.Apply(cur)
		if err != nil {
			return err
		}
		if len(res) > 0 {
			if err := s.putInTx(ctx, tx, res); err != nil {
				return err
			}
		}
		return insertSteps(ctx, tx, steps)
	})
}

// lockedBodies locks the resources named "Type/id" and returns the current
// body of each that exists and is not deleted.
func (s *Store) lockedBodies(ctx context.Context, tx txn, names []string) (map[string][]byte, error) {
	keys := make([]key, 0, len(names))
	for _, n := range names {
		typ, id, ok := strings.Cut(n, "/")
		if !ok {
			return nil, fmt.Errorf("lock %q: want Type/id", n)
		}
		keys = append(keys, key{typ, id})
	}
	slices.SortFunc(keys, func(a, b key) int { return strings.Compare(a.typ+"/"+a.id, b.typ+"/"+b.id) })
	keys = slices.Compact(keys)
	cur, err := s.lockResources(ctx, tx, keys)
	if err != nil {
		return nil, err
	}
	out := map[string][]byte{}
	for k, c := range cur {
		if c.versionID == 0 || c.deleted {
			continue
		}
		var body []byte
		err := tx.queryRow(ctx, `SELECT body FROM resource_version WHERE type = $1 AND id = $2 AND version_id = $3`,
			k.typ, k.id, c.versionID).Scan(&body)
		if err != nil {
			return nil, fmt.Errorf("read %s/%s: %w", k.typ, k.id, err)
		}
		out[k.typ+"/"+k.id] = body
	}
	return out, nil
}

// putInTx writes resources as PutResources does, inside tx.
func (s *Store) putInTx(ctx context.Context, tx txn, res []Resource) error {
	c := EpisodeChange{Document: []byte("-"), Resources: res}
	if err := checkChange(c); err != nil {
		return err
	}
	entries, batch, err := s.resourceWrites(ctx, tx, c, s.now().UTC().Truncate(time.Millisecond))
	if err != nil {
		return err
	}
	if err := tx.execBatch(ctx, batch); err != nil {
		return err
	}
	return s.writeIndex(ctx, tx, c, entries)
}

// RxMessages returns the archived messages of an order, oldest first.
func (s *Store) RxMessages(ctx context.Context, orderID string) ([]RxMessage, error) {
	rs, err := s.drv.query(ctx, `SELECT message_id, order_id, prescription_id, episode_id, kind, issue, body, jws, status, code,
		attempts, created_at, updated_at FROM rx_message WHERE order_id = $1 ORDER BY created_at, message_id`, orderID)
	if err != nil {
		return nil, fmt.Errorf("read rx messages of %s: %w", orderID, err)
	}
	var out []RxMessage
	err = eachRow(rs, func(r rows) error {
		var m RxMessage
		var created, updated int64
		if err := r.Scan(&m.MessageID, &m.OrderID, &m.PrescriptionID, &m.EpisodeID, &m.Kind, &m.Issue, &m.Body, &m.JWS,
			&m.Status, &m.Code, &m.Attempts, &created, &updated); err != nil {
			return err
		}
		m.CreatedAt, m.UpdatedAt = fromMillis(created), fromMillis(updated)
		out = append(out, m)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read rx messages of %s: %w", orderID, err)
	}
	return out, nil
}

// RxTimeline returns the steps of the prescription named id, which is the
// MedicationRequest id or the KAP prescription id, in the order recorded.
func (s *Store) RxTimeline(ctx context.Context, id string) ([]RxStep, error) {
	rs, err := s.drv.query(ctx, `SELECT seq, order_id, prescription_id, message_id, message, step, code, detail, trace_id, at
		FROM rx_step WHERE order_id IN (SELECT order_id FROM rx_step WHERE order_id = $1 OR prescription_id = $1)
		ORDER BY seq`, id)
	if err != nil {
		return nil, fmt.Errorf("read rx timeline: %w", err)
	}
	var out []RxStep
	err = eachRow(rs, func(r rows) error {
		var st RxStep
		var at int64
		if err := r.Scan(&st.Seq, &st.OrderID, &st.PrescriptionID, &st.MessageID, &st.Message, &st.Step, &st.Code,
			&st.Detail, &st.TraceID, &at); err != nil {
			return err
		}
		st.At = fromMillis(at)
		out = append(out, st)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read rx timeline: %w", err)
	}
	return out, nil
}

// RxBlocked returns the prescriptions whose latest check blocks sending,
// oldest check first.
func (s *Store) RxBlocked(ctx context.Context) ([]RxCheck, error) {
	rs, err := s.drv.query(ctx, `SELECT order_id, prescription_id, episode_id, blocked, findings, rule_set, checked_at
		FROM rx_check WHERE blocked = $1 ORDER BY checked_at, order_id`, true)
	if err != nil {
		return nil, fmt.Errorf("read blocked prescriptions: %w", err)
	}
	var out []RxCheck
	err = eachRow(rs, func(r rows) error {
		var c RxCheck
		var findings string
		var at int64
		if err := r.Scan(&c.OrderID, &c.PrescriptionID, &c.EpisodeID, &c.Blocked, &findings, &c.RuleSet, &at); err != nil {
			return err
		}
		c.Findings, c.CheckedAt = json.RawMessage(findings), fromMillis(at)
		out = append(out, c)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read blocked prescriptions: %w", err)
	}
	return out, nil
}

// eachRow calls fn for every row of rs and closes it.
func eachRow(rs rows, fn func(rows) error) error {
	for rs.Next() {
		if err := fn(rs); err != nil {
			_ = rs.Close()
			return err
		}
	}
	if err := rs.Err(); err != nil {
		_ = rs.Close()
		return err
	}
	return rs.Close()
}

// querier returns the transaction as the store's SQL surface.
func (t Tx) querier() querier {
	if t.pgx != nil {
		return pgQuerier{t.pgx}
	}
	return sqlQuerier{t.sql}
}

// LatestRxMessageTx returns, inside the episode's transaction, the archived
// message of kind with the highest issue for an order, and false when there
// is none: how the prescription hook knows which issue was sent.
func (s *Store) LatestRxMessageTx(ctx context.Context, tx Tx, orderID, kind string) (RxMessage, bool, error) {
	m := RxMessage{OrderID: orderID, Kind: kind}
	err := tx.querier().queryRow(ctx, `SELECT message_id, prescription_id, episode_id, issue, status, code, attempts
		FROM rx_message WHERE order_id = $1 AND kind = $2 ORDER BY issue DESC LIMIT 1`, orderID, kind).
		Scan(&m.MessageID, &m.PrescriptionID, &m.EpisodeID, &m.Issue, &m.Status, &m.Code, &m.Attempts)
	if isNoRows(err) {
		return m, false, nil
	}
	if err != nil {
		return m, false, fmt.Errorf("read latest %s of %s: %w", kind, orderID, err)
	}
	return m, true, nil
}
