package store

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
)

// JournalPos is a place in the AuditEvent journal (internal/audit): byte
// Offset of journal file number File. Everything journalled before it is in
// the database.
type JournalPos struct {
	File   uint64
	Offset int64
}

// AuditJournalPos returns how far the AuditEvent journal has been ingested;
// the zero JournalPos when it never has.
func (s *Store) AuditJournalPos(ctx context.Context) (JournalPos, error) {
	var file, off int64
	err := s.drv.queryRow(ctx, `SELECT file, pos FROM audit_journal WHERE id = 1`).Scan(&file, &off)
	if isNoRows(err) {
		return JournalPos{}, nil
	}
	if err != nil {
		return JournalPos{}, fmt.Errorf("read audit journal position: %w", err)
	}
	return JournalPos{File: uint64(file), Offset: off}, nil
}

// IngestAuditJournal writes journalled AuditEvents and exchange rows and
// records pos as how far the journal is ingested, in one transaction: a
// crash before it commits leaves the records to be ingested again, a crash
// after it never ingests them twice.
func (s *Store) IngestAuditJournal(ctx context.Context, recs []AuditRecord, rows []Exchange, pos JournalPos) error {
	stmts := auditInserts(recs)
	stmts = append(stmts, exchangeInserts(rows)...)
	stmts = append(stmts, stmt{what: "record audit journal position",
		sql: `INSERT INTO audit_journal (id, file, pos) VALUES (1, $1, $2)
			ON CONFLICT (id) DO UPDATE SET file = excluded.file, pos = excluded.pos`,
		args: []any{int64(pos.File), pos.Offset}})
	return s.write(ctx, "ingest audit journal", func(tx txn) error { return tx.execBatch(ctx, stmts) })
}

// auditInserts are multi-row statements storing recs, in order: an ingest
// writes thousands at a time.
func auditInserts(recs []AuditRecord) []stmt {
	rows := make([][]any, len(recs))
	for i, r := range recs {
		rows[i] = []any{r.ID, millis(r.Recorded), r.ClientID, r.PatientID, r.Action, r.Outcome, r.Body}
	}
	return insertRows("insert audit events", `INSERT INTO audit_event (id, recorded, client_id, patient_id, action, outcome, body) VALUES `, rows)
}

// DatabaseDir returns the directory of the SQLite database file, where
// files that belong with it (the AuditEvent journal) are kept. It fails on
// PostgreSQL.
func (s *Store) DatabaseDir(ctx context.Context) (string, error) {
	if s.dialect.name != "sqlite" {
		return "", errors.New("database directory: not a SQLite store")
	}
	rs, err := s.drv.query(ctx, `PRAGMA database_list`)
	if err != nil {
		return "", fmt.Errorf("database directory: %w", err)
	}
	defer rs.Close()
	for rs.Next() {
		var seq int64
		var name, file string
		if err := rs.Scan(&seq, &name, &file); err != nil {
			return "", fmt.Errorf("database directory: %w", err)
		}
		if name == "main" && file != "" {
			return filepath.Dir(file), nil
		}
	}
	if err := rs.Err(); err != nil {
		return "", fmt.Errorf("database directory: %w", err)
	}
	return "", errors.New("database directory: the main database has no file")
}
