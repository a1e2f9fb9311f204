package store

import (
	"context"
	"testing"
	"time"
)

// TestAuditEventsSQLite and TestAuditEventsPostgres run the AuditEvent
// table on both databases.
func TestAuditEventsSQLite(t *testing.T) {
	t.Parallel()
	testAuditEvents(t, openSQLiteTest)
}

func TestAuditEventsPostgres(t *testing.T) {
	t.Parallel()
	testAuditEvents(t, openPostgresTest)
}

func testAuditEvents(t *testing.T, open opener) {
	ctx := context.Background()
	s := migrated(t, open, newClock().now)
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	recs := []AuditRecord{
		{ID: "a1", Recorded: t0, ClientID: "ehr-a", PatientID: "p1", Action: "R", Outcome: "0", Body: []byte(`{"id":"a1"}`)},
		{ID: "a2", Recorded: t0.Add(time.Hour), ClientID: "ehr-b", PatientID: "p1", Action: "E", Outcome: "0", Body: []byte(`{"id":"a2"}`)},
		{ID: "a3", Recorded: t0.Add(2 * time.Hour), ClientID: "ehr-a", PatientID: "p2", Action: "R", Outcome: "4", Body: []byte(`{"id":"a3"}`)},
	}
	if err := s.AddAuditEvents(ctx, recs); err != nil {
		t.Fatal(err)
	}
	if err := s.AddAuditEvents(ctx, recs[:1]); err == nil {
		t.Fatal("duplicate id accepted")
	}
	// AuditEvents and exchange rows share one transaction: all or nothing.
	row := Exchange{At: t0, Kind: "pull", Direction: "in", TraceID: "t-ride", PartnerID: "ehr-a", Status: "ok"}
	if err := s.AddAuditEventsAndExchanges(ctx, recs[:1], []Exchange{row}); err == nil {
		t.Fatal("duplicate id accepted with exchange rows")
	}
	if got, err := s.Exchanges(ctx, ExchangeFilter{TraceID: "t-ride"}); err != nil || len(got) != 0 {
		t.Fatalf("exchange rows of a failed audit commit: %d (%v)", len(got), err)
	}
	if err := s.AddAuditEventsAndExchanges(ctx, nil, []Exchange{row, row}); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Exchanges(ctx, ExchangeFilter{TraceID: "t-ride"}); err != nil || len(got) != 2 {
		t.Fatalf("exchange rows written with the audit commit: %d (%v)", len(got), err)
	}
	ids := func(f AuditFilter) string {
		t.Helper()
		got, err := s.AuditEvents(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		out := ""
		for _, r := range got {
			out += r.ID + " "
		}
		return out
	}
	for f, want := range map[*AuditFilter]string{
		{}:                            "a3 a2 a1 ",
		{PatientID: "p1"}:             "a2 a1 ",
		{ClientID: "ehr-a", Limit: 1}: "a3 ",
		{Since: t0.Add(time.Minute)}:  "a3 a2 ",
		{Until: t0.Add(time.Minute)}:  "a1 ",
		{ID: "a2"}:                    "a2 ",
	} {
		if got := ids(*f); got != want {
			t.Errorf("AuditEvents(%+v) = %q, want %q", *f, got, want)
		}
	}
	n, err := s.DeleteAuditEventsBefore(ctx, t0.Add(90*time.Minute))
	if err != nil || n != 2 {
		t.Fatalf("retention deleted %d, %v", n, err)
	}
	if got := ids(AuditFilter{}); got != "a3 " {
		t.Errorf("after retention %q", got)
	}
}
