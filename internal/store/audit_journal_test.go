package store

import (
	"context"
	"path/filepath"
	"testing"
	"time"
)

// TestAuditJournalSQLite and TestAuditJournalPostgres: the journal's
// position is stored with the rows it covers, all or nothing.
func TestAuditJournalSQLite(t *testing.T) {
	t.Parallel()
	testAuditJournal(t, openSQLiteTest)
}

func TestAuditJournalPostgres(t *testing.T) {
	t.Parallel()
	testAuditJournal(t, openPostgresTest)
}

func testAuditJournal(t *testing.T, open opener) {
	ctx := context.Background()
	s := migrated(t, open, newClock().now)
	if pos, err := s.AuditJournalPos(ctx); err != nil || pos != (JournalPos{}) {
		t.Fatalf("position of a journal never ingested = %+v, %v", pos, err)
	}
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	rec := AuditRecord{ID: "j1", Recorded: t0, ClientID: "ehr-j", Action: "R", Outcome: "0", Body: []byte(`{}`)}
	row := Exchange{At: t0, Kind: "pull", Direction: "in", TraceID: "t-journal", Status: "ok"}
	if err := s.IngestAuditJournal(ctx, []AuditRecord{rec}, []Exchange{row}, JournalPos{File: 3, Offset: 120}); err != nil {
		t.Fatal(err)
	}
	if pos, err := s.AuditJournalPos(ctx); err != nil || pos != (JournalPos{File: 3, Offset: 120}) {
		t.Fatalf("position = %+v, %v; want 3:120", pos, err)
	}
	// A failing ingest (duplicate id) moves neither rows nor position.
	if err := s.IngestAuditJournal(ctx, []AuditRecord{rec}, []Exchange{row}, JournalPos{File: 3, Offset: 900}); err == nil {
		t.Fatal("duplicate AuditEvent ingested")
	}
	if pos, err := s.AuditJournalPos(ctx); err != nil || pos != (JournalPos{File: 3, Offset: 120}) {
		t.Fatalf("position after a failed ingest = %+v, %v; want 3:120", pos, err)
	}
	if got, err := s.Exchanges(ctx, ExchangeFilter{TraceID: "t-journal"}); err != nil || len(got) != 1 {
		t.Fatalf("%d exchange rows after a failed ingest, want 1 (%v)", len(got), err)
	}
	if err := s.IngestAuditJournal(ctx, nil, nil, JournalPos{File: 4}); err != nil {
		t.Fatal(err)
	}
	if pos, err := s.AuditJournalPos(ctx); err != nil || pos != (JournalPos{File: 4}) {
		t.Fatalf("position = %+v, %v; want 4:0", pos, err)
	}
}

func TestDatabaseDir(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s, err := Open(context.Background(), Config{DataDir: dir}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got, err := s.DatabaseDir(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if want, _ := filepath.EvalSymlinks(dir); got != dir && got != want {
		t.Errorf("DatabaseDir = %q, want %q", got, dir)
	}
}
