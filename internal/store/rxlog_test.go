package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"
)

// TestRxLogSQLite and TestRxLogPostgres run the e-prescribing records on
// both databases.
func TestRxLogSQLite(t *testing.T) {
	t.Parallel()
	testRxLog(t, openSQLiteTest)
}

func TestRxLogPostgres(t *testing.T) {
	t.Parallel()
	testRxLog(t, openPostgresTest)
}

func testRxLog(t *testing.T, open opener) {
	t.Helper()
	tests := map[string]func(*testing.T, opener){
		"RecordInEpisodeTx": testRxRecordTx,
		"EventsApplyOnce":   testRxEventsOnce,
	}
	for name, test := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			test(t, open)
		})
	}
}

func testRxRecordTx(t *testing.T, open opener) {
	ctx := context.Background()
	s := migrated(t, open, newClock().now)
	at := time.Date(2026, 3, 24, 12, 0, 0, 0, time.UTC)
	rec := RxRecord{
		Check: &RxCheck{OrderID: "mr-1", PrescriptionID: "rx1", EpisodeID: "ep1", Blocked: true,
			Findings: []byte(`[{"code":"prescriber-dea"}]`), RuleSet: "2026-01-01", CheckedAt: at},
		Messages: []RxMessage{{MessageID: "m1", OrderID: "mr-1", PrescriptionID: "rx1", EpisodeID: "ep1", Kind: "NewRx",
			Issue: 1, Body: []byte("<Message/>"), Status: "queued", CreatedAt: at}},
		Steps: []RxStep{{OrderID: "mr-1", PrescriptionID: "rx1", Step: "written", TraceID: "abc", At: at},
			{OrderID: "mr-1", PrescriptionID: "rx1", Step: "checked", Code: "prescriber-dea", At: at}},
	}
	docs := 0
	apply := func(r RxRecord, fail bool) error {
		docs++ // every document differs, so afterWrite runs
		c := change(nil, res("Patient", "pat1", "pat1", fmt.Sprint(docs)))
		_, err := s.ApplyEpisodeTx(ctx, "ep1", func([]byte, string) (EpisodeChange, error) { return c, nil },
			func(ctx context.Context, tx Tx, _ ApplyResult) error {
				if err := s.RecordRxTx(ctx, tx, r); err != nil {
					return err
				}
				if fail {
					return errors.New("boom")
				}
				return nil
			})
		return err
	}
	if err := apply(rec, true); err == nil {
		t.Fatal("failing afterWrite: no error")
	}
	if steps, err := s.RxTimeline(ctx, "mr-1"); err != nil || len(steps) != 0 {
		t.Fatalf("after rollback: %d steps, %v; want none", len(steps), err)
	}
	if err := apply(rec, false); err != nil {
		t.Fatal(err)
	}
	blocked, err := s.RxBlocked(ctx)
	if err != nil || len(blocked) != 1 || blocked[0].OrderID != "mr-1" || !bytes.Contains(blocked[0].Findings, []byte("prescriber-dea")) {
		t.Fatalf("blocked: %+v, %v", blocked, err)
	}
	err = s.RecordRxAttempt(ctx, RxAttempt{MessageID: "m1", JWS: "h..s", Counted: true, Status: "accepted", Code: "000", At: at,
		Steps: []RxStep{{OrderID: "mr-1", PrescriptionID: "rx1", MessageID: "m1", Step: "accepted", At: at}}})
	if err != nil {
		t.Fatal(err)
	}
	msgs, err := s.RxMessages(ctx, "mr-1")
	if err != nil || len(msgs) != 1 {
		t.Fatalf("messages: %+v, %v", msgs, err)
	}
	if m := msgs[0]; m.Status != "accepted" || m.Attempts != 1 || m.JWS != "h..s" || string(m.Body) != "<Message/>" || m.Issue != 1 {
		t.Errorf("archived message %+v", m)
	}
	steps, err := s.RxTimeline(ctx, "rx1")
	if err != nil || len(steps) != 3 || steps[0].Step != "written" || steps[0].TraceID != "abc" || steps[2].Step != "accepted" {
		t.Fatalf("timeline by prescription id: %+v, %v", steps, err)
	}
	// The check clears: nothing is blocked any more.
	rec.Check.Blocked, rec.Check.Findings, rec.Steps = false, nil, nil
	if err := apply(rec, false); err != nil {
		t.Fatal(err)
	}
	if blocked, err := s.RxBlocked(ctx); err != nil || len(blocked) != 0 {
		t.Fatalf("blocked after clearing: %+v, %v", blocked, err)
	}
}

func testRxEventsOnce(t *testing.T, open opener) {
	ctx := context.Background()
	s := migrated(t, open, newClock().now)
	var applied atomic.Int32
	event := func(id string, n int) RxEvent {
		return RxEvent{EventID: id, OrderID: "mr-1", Type: "RxFill", At: time.Now(), Lock: []string{"Task/t1"},
			Apply: func(cur map[string][]byte) ([]Resource, []RxStep, error) {
				applied.Add(1)
				note := fmt.Sprintf("%s+%d", cur["Task/t1"], n)
				return []Resource{res("Task", "t1", "pat1", note)}, []RxStep{{OrderID: "mr-1", Step: "shipped", At: time.Now()}}, nil
			}}
	}
	// Two events at once both apply, one after the other (no lost update);
	// a repeat of either applies nothing.
	run(t, 2, func(i int) error { return s.ApplyRxEvent(ctx, event(fmt.Sprint("e", i), i)) })
	for i := range 2 {
		if err := s.ApplyRxEvent(ctx, event(fmt.Sprint("e", i), 9)); !errors.Is(err, ErrDuplicateEvent) {
			t.Errorf("repeat of e%d: %v, want ErrDuplicateEvent", i, err)
		}
	}
	if n := applied.Load(); n != 2 {
		t.Errorf("Apply ran %d times, want 2", n)
	}
	v, err := s.Read(ctx, "Task", "t1")
	if err != nil || v.VersionID != 2 {
		t.Fatalf("task: v%d, %v; want version 2", v.VersionID, err)
	}
	if !bytes.Contains(v.Body, []byte("+0")) || !bytes.Contains(v.Body, []byte("+1")) {
		t.Errorf("second event did not see the first: %s", v.Body)
	}
	if steps, _ := s.RxTimeline(ctx, "mr-1"); len(steps) != 2 {
		t.Errorf("%d steps, want 2", len(steps))
	}
	failing := event("e-fail", 3)
	failing.Apply = func(map[string][]byte) ([]Resource, []RxStep, error) { return nil, nil, errors.New("boom") }
	if err := s.ApplyRxEvent(ctx, failing); err == nil {
		t.Fatal("failing Apply: no error")
	}
	if err := s.ApplyRxEvent(ctx, event("e-fail", 3)); err != nil {
		t.Errorf("event whose first apply failed is not applied later: %v", err)
	}
}
