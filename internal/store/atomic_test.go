package store

import (
	"context"
	"testing"
	"time"
)

// TestAuditGroupIsAtomic: a group commit whose last statement fails stores
// none of its AuditEvents or exchange rows, on both databases (on
// PostgreSQL the group is one pipelined batch, an implicit transaction);
// a good group stores all of them.
func TestAuditGroupIsAtomic(t *testing.T) {
	t.Parallel()
	for name, open := range map[string]opener{"sqlite": openSQLiteTest, "postgres": openPostgresTest} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			s := migrated(t, open, time.Now)
			ctx := context.Background()
			at := time.Now()
			rec := func(id string) AuditRecord {
				return AuditRecord{ID: id, Recorded: at, ClientID: "ehr-1", PatientID: "p1", Action: "R", Outcome: "0", Body: []byte(`{"resourceType":"AuditEvent"}`)}
			}
			rows := []Exchange{
				{At: at, Kind: "pull", Direction: "in", TraceID: "t1", PartnerID: "ehr-1", Status: "ok"},
				{At: at, Kind: "pull", Direction: "in", TraceID: "t2", PartnerID: "ehr-1", Status: "ok"},
			}
			// The second record repeats the first's id: the unique index
			// fails the group after the first insert ran.
			if err := s.AddAuditEventsAndExchanges(ctx, []AuditRecord{rec("a1"), rec("a1")}, rows); err == nil {
				t.Fatal("a group with a repeated AuditEvent id was stored")
			}
			count := func() (int, int) {
				t.Helper()
				as, err := s.AuditEvents(ctx, AuditFilter{Limit: 100})
				if err != nil {
					t.Fatal(err)
				}
				xs, err := s.Exchanges(ctx, ExchangeFilter{Limit: 100})
				if err != nil {
					t.Fatal(err)
				}
				return len(as), len(xs)
			}
			if a, x := count(); a != 0 || x != 0 {
				t.Fatalf("after a failed group: %d AuditEvents and %d exchange rows stored, want none", a, x)
			}
			if err := s.AddAuditEventsAndExchanges(ctx, []AuditRecord{rec("a1"), rec("a2")}, rows); err != nil {
				t.Fatal(err)
			}
			if a, x := count(); a != 2 || x != 2 {
				t.Fatalf("after a good group: %d AuditEvents and %d exchange rows, want 2 and 2", a, x)
			}
		})
	}
}
