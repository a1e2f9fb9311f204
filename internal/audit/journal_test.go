package audit_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kapgw/kapgw/internal/audit"
	"github.com/kapgw/kapgw/internal/store"
)

// noIngest keeps journalled records out of the database until Sync or
// Close, so a test sees exactly what the journal alone holds.
var noIngest = audit.JournalOptions{IngestEvery: time.Hour, IngestAfter: 1 << 30}

// openDB opens and migrates the SQLite store in dataDir.
func openDB(t testing.TB, dataDir string) *store.Store {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, store.Config{DataDir: dataDir}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	return st
}

// openJournal opens the journal in dir over st.
func openJournal(t testing.TB, dir string, st *store.Store, o audit.JournalOptions) *audit.Journal {
	t.Helper()
	j, err := audit.OpenJournal(context.Background(), dir, st, o)
	if err != nil {
		t.Fatalf("open journal: %v", err)
	}
	return j
}

// record records one read of patient by client and fails the test when
// it is refused.
func record(t testing.TB, w *audit.Writer, client, patient string) {
	t.Helper()
	if err := w.Record(context.Background(), audit.Access{ClientID: client, Interaction: "read", Status: 200, Patients: []string{patient}}); err != nil {
		t.Fatalf("record: %v", err)
	}
}

// counts returns how many AuditEvents of client and exchange rows of
// partner the database holds, and fails on duplicate AuditEvent ids.
func counts(t testing.TB, st *store.Store, client, partner string) (events, rows int) {
	t.Helper()
	ctx := context.Background()
	recs, err := st.AuditEvents(ctx, store.AuditFilter{ClientID: client, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, r := range recs {
		if seen[r.ID] {
			t.Fatalf("AuditEvent %s stored twice", r.ID)
		}
		seen[r.ID] = true
	}
	xs, err := st.Exchanges(ctx, store.ExchangeFilter{PartnerID: partner, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	return len(recs), len(xs)
}

func pulls(n int, partner string) []store.Exchange {
	rows := make([]store.Exchange, n)
	for i := range rows {
		rows[i] = store.Exchange{At: time.Now(), Kind: "pull", Direction: "in", PartnerID: partner, Status: "ok",
			Refs: []string{"Patient/p" + strconv.Itoa(i)}, Attempt: 1, Duration: time.Millisecond}
	}
	return rows
}

// TestJournalHoldsTheRecordWhenRecordReturns: Record returns once the
// group is appended to the journal, before the database has it; Sync
// moves it, with the exchange rows that rode along, into the database.
func TestJournalHoldsTheRecordWhenRecordReturns(t *testing.T) {
	t.Parallel()
	data := t.TempDir()
	st := openDB(t, data)
	dir := filepath.Join(data, "audit-journal")
	rider := &sliceRider{rows: pulls(3, "ehr-j1")}
	w := audit.NewWriter(st, nil, audit.Options{Committers: 1, Rider: rider, Journal: openJournal(t, dir, st, noIngest)})
	defer w.Close()
	record(t, w, "ehr-j1", "patient-j1")
	var journal []byte
	files, _ := filepath.Glob(filepath.Join(dir, "*.journal"))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		journal = append(journal, b...)
	}
	if !bytes.Contains(journal, []byte("ehr-j1")) || !bytes.Contains(journal, []byte("patient-j1")) {
		t.Fatalf("the AuditEvent is not in the journal when Record returns (%d files, %d bytes)", len(files), len(journal))
	}
	if ev, rows := counts(t, st, "ehr-j1", "ehr-j1"); ev != 0 || rows != 0 {
		t.Fatalf("%d AuditEvents and %d exchange rows in the database before any ingest, want none", ev, rows)
	}
	if err := w.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	if ev, rows := counts(t, st, "ehr-j1", "ehr-j1"); ev != 1 || rows != 3 {
		t.Fatalf("after Sync: %d AuditEvents and %d exchange rows, want 1 and 3", ev, rows)
	}
}

// TestJournalIngestsInTheBackground: without Sync, records reach the
// database within IngestEvery.
func TestJournalIngestsInTheBackground(t *testing.T) {
	t.Parallel()
	data := t.TempDir()
	st := openDB(t, data)
	j := openJournal(t, filepath.Join(data, "audit-journal"), st, audit.JournalOptions{IngestEvery: 20 * time.Millisecond})
	w := audit.NewWriter(st, nil, audit.Options{Committers: 1, Journal: j})
	defer w.Close()
	for i := range 5 {
		record(t, w, "ehr-bg", "p"+strconv.Itoa(i))
	}
	deadline := time.Now().Add(5 * time.Second)
	for ev, _ := counts(t, st, "ehr-bg", ""); ev != 5; ev, _ = counts(t, st, "ehr-bg", "") {
		if time.Now().After(deadline) {
			t.Fatalf("%d of 5 AuditEvents ingested after 5s", ev)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestJournalCrashBeforeIngestLosesNothing: a writer abandoned without
// Close (the process died) after Record returned, with a torn frame at
// the end of its file (a write cut short), loses nothing: the next
// OpenJournal replays every acknowledged record, once, and deletes the
// replayed files.
func TestJournalCrashBeforeIngestLosesNothing(t *testing.T) {
	t.Parallel()
	data := t.TempDir()
	dir := filepath.Join(data, "audit-journal")
	st := openDB(t, data)
	rider := &sliceRider{rows: pulls(4, "ehr-crash")}
	w := audit.NewWriter(st, nil, audit.Options{Committers: 1, Rider: rider, Journal: openJournal(t, dir, st, noIngest)})
	for i := range 10 {
		record(t, w, "ehr-crash", "p"+strconv.Itoa(i))
	}
	if err := w.Sync(context.Background()); err != nil { // the first 10 are ingested...
		t.Fatal(err)
	}
	rider.mu.Lock()
	rider.rows = pulls(2, "ehr-crash")
	rider.mu.Unlock()
	for i := range 7 { // ...these 7 and 2 rows only journalled
		record(t, w, "ehr-crash", "q"+strconv.Itoa(i))
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.journal"))
	if len(files) == 0 {
		t.Fatal("no journal file")
	}
	f, err := os.OpenFile(files[len(files)-1], os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte{200, 0, 0, 0, 1, 2, 3, 4, 'p', 'a', 'r', 't'}); err != nil {
		t.Fatal(err)
	}
	f.Close()
	// w is abandoned: no Close, as if the process had been killed.
	st.Close()

	st2 := openDB(t, data)
	j2 := openJournal(t, dir, st2, noIngest)
	if ev, rows := counts(t, st2, "ehr-crash", "ehr-crash"); ev != 17 || rows != 6 {
		t.Fatalf("after the crash and replay: %d AuditEvents and %d exchange rows, want 17 and 6", ev, rows)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "*.journal")); len(left) != 1 {
		t.Errorf("%d journal files after replay, want only the new one: %v", len(left), left)
	}
	if err := j2.Close(); err != nil {
		t.Fatal(err)
	}
	// A second start replays nothing again.
	j3 := openJournal(t, dir, st2, noIngest)
	defer j3.Close()
	if ev, rows := counts(t, st2, "ehr-crash", "ehr-crash"); ev != 17 || rows != 6 {
		t.Fatalf("after a second start: %d AuditEvents and %d exchange rows, want 17 and 6", ev, rows)
	}
}

// TestJournalFailedIngestDuplicatesNothing: an ingest transaction that
// fails part-way (here on a conflicting AuditEvent id) leaves neither its
// records nor its position behind; the retry after the conflict is gone
// stores each record and row exactly once, and a restart adds nothing.
func TestJournalFailedIngestDuplicatesNothing(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	data := t.TempDir()
	dir := filepath.Join(data, "audit-journal")
	st := openDB(t, data)
	j := openJournal(t, dir, st, noIngest)
	now := time.Now().UTC()
	rec := func(id string, at time.Time) store.AuditRecord {
		return store.AuditRecord{ID: id, Recorded: at, ClientID: "ehr-dup", Action: "R", Outcome: "0", Body: []byte(`{"resourceType":"AuditEvent"}`)}
	}
	if err := j.Append([]store.AuditRecord{rec("dup-a", now), rec("dup-b", now)}, pulls(2, "ehr-dup")); err != nil {
		t.Fatal(err)
	}
	if err := j.Append([]store.AuditRecord{rec("dup-c", now)}, pulls(1, "ehr-dup")); err != nil {
		t.Fatal(err)
	}
	// dup-b is already in the database, recorded long ago.
	if err := st.AddAuditEvents(ctx, []store.AuditRecord{rec("dup-b", now.Add(-48*time.Hour))}); err != nil {
		t.Fatal(err)
	}
	if err := j.Sync(ctx); err == nil {
		t.Fatal("Sync succeeded over a conflicting AuditEvent id")
	}
	if ev, rows := counts(t, st, "ehr-dup", "ehr-dup"); ev != 1 || rows != 0 {
		t.Fatalf("after the failed ingest: %d AuditEvents and %d exchange rows, want only the old dup-b", ev, rows)
	}
	if _, err := st.DeleteAuditEventsBefore(ctx, now.Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := j.Sync(ctx); err != nil {
		t.Fatalf("Sync after the conflict is gone: %v", err)
	}
	if ev, rows := counts(t, st, "ehr-dup", "ehr-dup"); ev != 3 || rows != 3 {
		t.Fatalf("after the retry: %d AuditEvents and %d exchange rows, want 3 and 3", ev, rows)
	}
	// Abandon j (a crash after ingest) and start again: nothing twice.
	j2 := openJournal(t, dir, st, noIngest)
	defer j2.Close()
	if ev, rows := counts(t, st, "ehr-dup", "ehr-dup"); ev != 3 || rows != 3 {
		t.Fatalf("after a restart: %d AuditEvents and %d exchange rows, want 3 and 3", ev, rows)
	}
}

// TestJournalWriteFailureRefusesTheAccess: when the group cannot be
// journalled (here the next file cannot be created: the directory is
// gone), Record fails, so the access is refused, and the exchange rows go
// back to the rider; once the directory is back, accesses are recorded
// again.
func TestJournalWriteFailureRefusesTheAccess(t *testing.T) {
	t.Parallel()
	data := t.TempDir()
	dir := filepath.Join(data, "audit-journal")
	st := openDB(t, data)
	rider := &sliceRider{}
	// Every group starts a new file.
	o := noIngest
	o.MaxFileBytes = 1
	w := audit.NewWriter(st, nil, audit.Options{Committers: 1, Rider: rider, Journal: openJournal(t, dir, st, o)})
	defer w.Close()
	record(t, w, "ehr-fail", "p1")
	if err := os.Rename(dir, dir+".away"); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dir, []byte("not a directory"), 0o600); err != nil {
		t.Fatal(err)
	}
	rider.mu.Lock()
	rider.rows = pulls(2, "ehr-fail")
	rider.mu.Unlock()
	if err := w.Record(context.Background(), audit.Access{ClientID: "ehr-fail", Interaction: "read", Status: 200, Patients: []string{"p2"}}); err == nil {
		t.Fatal("Record succeeded with nowhere to journal")
	}
	if rider.returned != 2 {
		t.Errorf("%d exchange rows given back after the failed append, want 2", rider.returned)
	}
	if err := os.Remove(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(dir+".away", dir); err != nil {
		t.Fatal(err)
	}
	record(t, w, "ehr-fail", "p3")
	if err := w.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	if ev, _ := counts(t, st, "ehr-fail", ""); ev != 2 {
		t.Fatalf("%d AuditEvents, want the 2 accesses that were not refused", ev)
	}
}

// TestJournalRotates: past MaxFileBytes a new file starts, and files are
// deleted once ingested, with every record ingested once.
func TestJournalRotates(t *testing.T) {
	t.Parallel()
	data := t.TempDir()
	dir := filepath.Join(data, "audit-journal")
	st := openDB(t, data)
	o := noIngest
	o.MaxFileBytes = 4 << 10
	o.MaxTxRows = 7
	w := audit.NewWriter(st, nil, audit.Options{Committers: 1, Journal: openJournal(t, dir, st, o)})
	defer w.Close()
	for i := range 40 {
		record(t, w, "ehr-rot", "p"+strconv.Itoa(i))
	}
	if files, _ := filepath.Glob(filepath.Join(dir, "*.journal")); len(files) < 3 {
		t.Fatalf("%d journal files for 40 AuditEvents of 4 KiB files, want several", len(files))
	}
	if err := w.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	if files, _ := filepath.Glob(filepath.Join(dir, "*.journal")); len(files) != 1 {
		t.Errorf("%d journal files after ingest, want only the current one", len(files))
	}
	if ev, _ := counts(t, st, "ehr-rot", ""); ev != 40 {
		t.Fatalf("%d AuditEvents, want 40", ev)
	}
}

// TestJournalCloseIngestsEverything: Close leaves nothing in the journal.
func TestJournalCloseIngestsEverything(t *testing.T) {
	t.Parallel()
	data := t.TempDir()
	st := openDB(t, data)
	w := audit.NewWriter(st, nil, audit.Options{Committers: 1, Journal: openJournal(t, filepath.Join(data, "audit-journal"), st, noIngest)})
	for i := range 12 {
		record(t, w, "ehr-close", "p"+strconv.Itoa(i))
	}
	w.Close()
	if ev, _ := counts(t, st, "ehr-close", ""); ev != 12 {
		t.Fatalf("%d AuditEvents after Close, want 12", ev)
	}
}

// TestJournalSurvivesKill runs a child process that records accesses and
// is then killed (SIGKILL, no Close, nothing ingested); the next start
// finds every access it acknowledged.
func TestJournalSurvivesKill(t *testing.T) {
	if dir := os.Getenv("KAPGW_AUDIT_JOURNAL_CHILD"); dir != "" {
		journalChild(t, dir)
		return
	}
	t.Parallel()
	data := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run", "^TestJournalSurvivesKill$")
	cmd.Env = append(os.Environ(), "KAPGW_AUDIT_JOURNAL_CHILD="+data)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	acked := 0
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if n, ok := strings.CutPrefix(sc.Text(), "recorded "); ok {
			acked, _ = strconv.Atoi(n)
			if acked == 25 {
				break
			}
		}
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	if acked != 25 {
		t.Fatalf("the child acknowledged %d accesses, want 25", acked)
	}
	st := openDB(t, data)
	if ev, _ := counts(t, st, "ehr-kill", ""); ev != 0 {
		t.Fatalf("%d AuditEvents in the database before replay: the child ingested", ev)
	}
	j := openJournal(t, filepath.Join(data, "audit-journal"), st, noIngest)
	defer j.Close()
	if ev, _ := counts(t, st, "ehr-kill", ""); ev != acked {
		t.Fatalf("%d AuditEvents after the kill and replay, want the %d acknowledged", ev, acked)
	}
}

// journalChild records 25 accesses one by one, printing each
// acknowledgement, then waits to be killed.
func journalChild(t *testing.T, data string) {
	st := openDB(t, data)
	w := audit.NewWriter(st, nil, audit.Options{Committers: 1, Journal: openJournal(t, filepath.Join(data, "audit-journal"), st, noIngest)})
	for i := range 25 {
		record(t, w, "ehr-kill", "p"+strconv.Itoa(i))
		fmt.Printf("recorded %d\n", i+1)
	}
	time.Sleep(time.Minute)
	t.Fatal("not killed")
}

// TestJournalFsync: with Fsync every group is flushed to disk as well; the
// records go the same way into the database.
func TestJournalFsync(t *testing.T) {
	t.Parallel()
	data := t.TempDir()
	st := openDB(t, data)
	o := noIngest
	o.Fsync = true
	w := audit.NewWriter(st, nil, audit.Options{Committers: 1, Journal: openJournal(t, filepath.Join(data, "audit-journal"), st, o)})
	defer w.Close()
	for i := range 3 {
		record(t, w, "ehr-fsync", "p"+strconv.Itoa(i))
	}
	if err := w.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	if ev, _ := counts(t, st, "ehr-fsync", ""); ev != 3 {
		t.Fatalf("%d AuditEvents, want 3", ev)
	}
}
