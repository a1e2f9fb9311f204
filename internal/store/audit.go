package store

import (
	"context"
	"fmt"
	"strconv"
	"time"
)

// AuditRecord is one stored FHIR AuditEvent: Body is its JSON, the other
// fields index it for search and retention.
type AuditRecord struct {
	Seq       int64
	ID        string
	Recorded  time.Time
	ClientID  string
	PatientID string
	Action    string
	Outcome   string
	Body      []byte
}

// AuditFilter selects AuditEvents; zero fields do not filter. Records come
// newest first, Limit at a time; Before (a Seq) pages.
type AuditFilter struct {
	ID        string
	ClientID  string
	PatientID string
	Since     time.Time
	Until     time.Time
	Before    int64
	Limit     int
}

// AddAuditEvents writes every record in one transaction: the group commit
// of the audit writer. Either all are durable when it returns nil, or none.
func (s *Store) AddAuditEvents(ctx context.Context, recs []AuditRecord) error {
	return s.AddAuditEventsAndExchanges(ctx, recs, nil)
}

// AddAuditEventsAndExchanges writes AuditEvents and exchange log rows in
// one transaction, so the exchange rows of reads ride along in the audit
// group commit instead of costing a commit of their own.
func (s *Store) AddAuditEventsAndExchanges(ctx context.Context, recs []AuditRecord, rows []Exchange) error {
	if len(recs)+len(rows) == 0 {
		return nil
	}
	stmts := make([]stmt, 0, len(recs)+len(rows))
	for _, r := range recs {
		stmts = append(stmts, auditInsert(r))
	}
	stmts = append(stmts, exchangeInserts(rows)...)
	if err := s.drv.execAtomic(ctx, stmts); err != nil {
		return fmt.Errorf("add audit events: %w", err)
	}
	return nil
}

// auditInsert is the statement that stores r.
func auditInsert(r AuditRecord) stmt {
	return stmt{what: "insert audit event", sql: `INSERT INTO audit_event (id, recorded, client_id, patient_id, action, outcome, body)
			VALUES ($1, $2, $3, $4, $5, $6, $7)`,
		args: []any{r.ID, millis(r.Recorded), r.ClientID, r.PatientID, r.Action, r.Outcome, r.Body}}
}

// AuditEvents lists AuditEvents matching f, newest first.
func (s *Store) AuditEvents(ctx context.Context, f AuditFilter) ([]AuditRecord, error) {
	var w filter
	if f.ID != "" {
		w.add("id = ?", f.ID)
	}
	if f.ClientID != "" {
		w.add("client_id = ?", f.ClientID)
	}
	if f.PatientID != "" {
		w.add("patient_id = ?", f.PatientID)
	}
	if !f.Since.IsZero() {
		w.add("recorded >= ?", millis(f.Since))
	}
	if !f.Until.IsZero() {
		w.add("recorded < ?", millis(f.Until))
	}
	if f.Before > 0 {
		w.add("seq < ?", f.Before)
	}
	q := `SELECT seq, id, recorded, client_id, patient_id, action, outcome, body FROM audit_event`
	q += w.clause()
	limit := pageSize(f.Limit)
	q += ` ORDER BY seq DESC LIMIT ` + strconv.Itoa(limit)
	rs, err := s.drv.query(ctx, q, w.args...)
	if err != nil {
		return nil, fmt.Errorf("list audit events: %w", err)
	}
	defer rs.Close()
	var out []AuditRecord
	for rs.Next() {
		var r AuditRecord
		var rec int64
		if err := rs.Scan(&r.Seq, &r.ID, &rec, &r.ClientID, &r.PatientID, &r.Action, &r.Outcome, &r.Body); err != nil {
			return nil, fmt.Errorf("list audit events: %w", err)
		}
		r.Recorded = time.UnixMilli(rec).UTC()
		out = append(out, r)
	}
	if err := rs.Err(); err != nil {
		return nil, fmt.Errorf("list audit events: %w", err)
	}
	return out, nil
}

// DeleteAuditEventsBefore removes AuditEvents recorded before t (retention)
// and reports how many.
func (s *Store) DeleteAuditEventsBefore(ctx context.Context, t time.Time) (int64, error) {
	var n int64
	err := s.write(ctx, "delete audit events", func(tx txn) error {
		if err := tx.queryRow(ctx, `SELECT COUNT(*) FROM audit_event WHERE recorded < $1`, millis(t)).Scan(&n); err != nil {
			return err
		}
		return tx.exec(ctx, `DELETE FROM audit_event WHERE recorded < $1`, millis(t))
	})
	return n, err
}
