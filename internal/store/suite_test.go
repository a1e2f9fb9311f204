package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"
)

// opener opens a fresh, unmigrated store.
type opener func(tb testing.TB, now func() time.Time) *Store

// testStore is the behaviour suite every database must pass.
func testStore(t *testing.T, open opener) {
	t.Helper()
	tests := map[string]func(*testing.T, opener){
		"MigrateTwice":              testMigrateTwice,
		"CreateAndRead":             testCreateAndRead,
		"SameDocumentWritesNothing": testSameDocument,
		"ChangedResource":           testChangedResource,
		"Removed":                   testRemoved,
		"BuildErrorRollsBack":       testBuildError,
		"AfterWriteErrorRollsBack":  testAfterWriteError,
		"AfterWriteSeesTx":          testAfterWriteTx,
		"InvalidChange":             testInvalidChange,
		"NotFound":                  testNotFound,
		"Gone":                      testGone,
		"ConcurrentSameEpisode":     testConcurrentSameEpisode,
		"ConcurrentSharedResource":  testConcurrentShared,
		"LargeEpisode":              testLargeEpisode,
	}
	for name, test := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			test(t, open)
		})
	}
}

// migrated opens a store and migrates it.
func migrated(tb testing.TB, open opener, now func() time.Time) *Store {
	tb.Helper()
	s := open(tb, now)
	if err := s.Migrate(context.Background()); err != nil {
		tb.Fatalf("migrate: %v", err)
	}
	return s
}

func testMigrateTwice(t *testing.T, open opener) {
	ctx := context.Background()
	s := open(t, newClock().now)
	if err := s.Ready(ctx); err == nil {
		t.Fatal("Ready before Migrate: no error")
	}
	for i := range 2 {
		if err := s.Migrate(ctx); err != nil {
			t.Fatalf("migrate %d: %v", i+1, err)
		}
		if err := s.Ready(ctx); err != nil {
			t.Fatalf("Ready after migrate %d: %v", i+1, err)
		}
	}
	var n int
	if err := s.drv.queryRow(ctx, `SELECT COUNT(*) FROM schema_migration`).Scan(&n); err != nil {
		t.Fatalf("count migrations: %v", err)
	}
	if want, _ := latestMigration(s.dialect); int64(n) != want {
		t.Fatalf("schema_migration has %d rows, want %d", n, want)
	}
}

func testCreateAndRead(t *testing.T, open opener) {
	ctx := context.Background()
	clk := newClock()
	s := migrated(t, open, clk.now)
	c := change(nil, res("Patient", "pat1", "pat1", "a"), res("Practitioner", "pr1", "", "a"), res("Observation", "ob1", "pat1", "a"))
	var gotPrev []byte
	got, err := s.ApplyEpisode(ctx, "ep1", func(prev []byte, prevDigest string) (EpisodeChange, error) {
		gotPrev = prev
		if prevDigest != "" {
			t.Errorf("first document: previous digest %q", prevDigest)
		}
		return c, nil
	})
	if err != nil {
		t.Fatalf("apply: %v", err)
	}
	if gotPrev != nil || !got.Created {
		t.Fatalf("first document: prev %d bytes, Created %v; want none, true", len(gotPrev), got.Created)
	}
	wantEntries(t, got.Entries, "Patient/pat1 v1 created", "Practitioner/pr1 v1 created", "Observation/ob1 v1 created")

	wantTime := clk.last().UTC().Truncate(time.Millisecond)
	v := read(t, s, "Observation", "ob1")
	if v.VersionID != 1 || !v.LastUpdated.Equal(wantTime) || v.LastUpdated.Location() != time.UTC || v.Deleted {
		t.Fatalf("read: version %d, lastUpdated %v, deleted %v; want 1, %v UTC, false", v.VersionID, v.LastUpdated, v.Deleted, wantTime)
	}
	wantMeta := fmt.Sprintf(`"meta":{"versionId":"1","lastUpdated":%q}`, wantTime.Format("2006-01-02T15:04:05.000Z"))
	if !bytes.Contains(v.Body, []byte(wantMeta)) {
		t.Fatalf("body %s lacks %s", v.Body, wantMeta)
	}
	doc, err := s.Episode(ctx, "ep1")
	if err != nil || !bytes.Equal(doc, c.Document) {
		t.Fatalf("episode document: %v (equal %v)", err, bytes.Equal(doc, c.Document))
	}
	vs, err := s.EpisodeResources(ctx, "ep1")
	if err != nil {
		t.Fatalf("episode resources: %v", err)
	}
	var keys []string
	for _, v := range vs {
		keys = append(keys, fmt.Sprintf("%s/%s/%d", v.Type, v.ID, v.VersionID))
	}
	if fmt.Sprint(keys) != "[Observation/ob1/1 Patient/pat1/1 Practitioner/pr1/1]" {
		t.Fatalf("episode resources %v", keys)
	}
}

func testSameDocument(t *testing.T, open opener) {
	ctx := context.Background()
	s := migrated(t, open, newClock().now)
	c := change(nil, res("Patient", "pat1", "pat1", "a"), res("Observation", "ob1", "pat1", "a"))
	apply(t, s, "ep1", c)
	before := read(t, s, "Observation", "ob1")
	got, err := s.ApplyEpisode(ctx, "ep1", func(prev []byte, prevDigest string) (EpisodeChange, error) {
		if !bytes.Equal(prev, c.Document) || prevDigest != c.Digest {
			t.Errorf("previous document or digest differs from the accepted one")
		}
		return c, nil
	})
	if err != nil {
		t.Fatalf("apply again: %v", err)
	}
	if got.Created {
		t.Fatal("second document: Created")
	}
	wantEntries(t, got.Entries, "Patient/pat1 v1 unchanged", "Observation/ob1 v1 unchanged")
	after := read(t, s, "Observation", "ob1")
	if !after.LastUpdated.Equal(before.LastUpdated) || !bytes.Equal(after.Body, before.Body) {
		t.Fatal("same document rewrote the resource")
	}
	if n := countVersions(t, s); n != 2 {
		t.Fatalf("%d versions stored, want 2", n)
	}
}

func testChangedResource(t *testing.T, open opener) {
	ctx := context.Background()
	s := migrated(t, open, newClock().now)
	apply(t, s, "ep1", change(nil, res("Patient", "pat1", "pat1", "a"), res("Observation", "ob1", "pat1", "old")))
	v1 := read(t, s, "Observation", "ob1")
	got := apply(t, s, "ep1", change(nil, res("Patient", "pat1", "pat1", "a"), res("Observation", "ob1", "pat1", "new")))
	if got.Created {
		t.Fatal("update: Created")
	}
	wantEntries(t, got.Entries, "Patient/pat1 v1 unchanged", "Observation/ob1 v2 updated")
	if v := read(t, s, "Patient", "pat1"); v.VersionID != 1 {
		t.Fatalf("unchanged patient at version %d, want 1", v.VersionID)
	}
	v2 := read(t, s, "Observation", "ob1")
	if v2.VersionID != 2 || !bytes.Contains(v2.Body, []byte("new")) || !bytes.Contains(v2.Body, []byte(`"versionId":"2"`)) {
		t.Fatalf("current version %d, body %s", v2.VersionID, v2.Body)
	}
	hist, err := s.History(ctx, "Observation", "ob1")
	if err != nil || len(hist) != 2 || hist[0].VersionID != 2 || hist[1].VersionID != 1 {
		t.Fatalf("history: %v, %d versions", err, len(hist))
	}
	old, err := s.VRead(ctx, "Observation", "ob1", 1)
	if err != nil || !bytes.Equal(old.Body, v1.Body) || !old.LastUpdated.Equal(v1.LastUpdated) {
		t.Fatalf("vread 1: %v; body %s, want %s", err, old.Body, v1.Body)
	}
	_, err = s.VRead(ctx, "Observation", "ob1", 3)
	wantErr(t, "vread 3", err, ErrNotFound)
}

func testRemoved(t *testing.T, open opener) {
	s := migrated(t, open, newClock().now)
	apply(t, s, "ep1", change(nil, res("Observation", "ob1", "pat1", "a"), res("Observation", "ob2", "pat1", "a")))
	got := apply(t, s, "ep1", change([]string{"Observation/ob1", "Observation/ob2"},
		res("Observation", "ob1", "pat1", "entered-in-error"), res("Observation", "ob2", "pat1", "a")))
	wantEntries(t, got.Entries, "Observation/ob1 v2 removed", "Observation/ob2 v1 unchanged")
	if v := read(t, s, "Observation", "ob1"); v.Deleted || !bytes.Contains(v.Body, []byte("entered-in-error")) {
		t.Fatalf("retired resource: deleted %v, body %s", v.Deleted, v.Body)
	}
}

func testBuildError(t *testing.T, open opener) {
	ctx := context.Background()
	s := migrated(t, open, newClock().now)
	boom := errors.New("boom")
	_, err := s.ApplyEpisode(ctx, "ep1", func([]byte, string) (EpisodeChange, error) { return EpisodeChange{}, boom })
	wantErr(t, "apply with failing build", err, boom)
	_, err = s.Episode(ctx, "ep1")
	wantErr(t, "episode after failed build", err, ErrNotFound)
	// The episode can still be created afterwards.
	if got := apply(t, s, "ep1", change(nil, res("Patient", "pat1", "pat1", "a"))); !got.Created {
		t.Fatal("first successful document: not Created")
	}
}

func testAfterWriteError(t *testing.T, open opener) {
	ctx := context.Background()
	s := migrated(t, open, newClock().now)
	boom := errors.New("boom")
	fail := func(context.Context, Tx, ApplyResult) error { return boom }
	c1 := change(nil, res("Patient", "pat1", "pat1", "a"), res("Practitioner", "pr1", "", "a"))
	_, err := s.ApplyEpisodeTx(ctx, "ep1", func([]byte, string) (EpisodeChange, error) { return c1, nil }, fail)
	wantErr(t, "apply with failing afterWrite", err, boom)
	_, err = s.Episode(ctx, "ep1")
	wantErr(t, "episode after rollback", err, ErrNotFound)
	_, err = s.Read(ctx, "Patient", "pat1")
	wantErr(t, "read after rollback", err, ErrNotFound)
	if n := countVersions(t, s); n != 0 {
		t.Fatalf("%d versions after rollback, want 0", n)
	}

	apply(t, s, "ep1", c1)
	c2 := change(nil, res("Patient", "pat1", "pat1", "b"), res("Practitioner", "pr1", "", "a"), res("Observation", "ob1", "pat1", "a"))
	_, err = s.ApplyEpisodeTx(ctx, "ep1", func([]byte, string) (EpisodeChange, error) { return c2, nil }, fail)
	wantErr(t, "update with failing afterWrite", err, boom)
	if doc, err := s.Episode(ctx, "ep1"); err != nil || !bytes.Equal(doc, c1.Document) {
		t.Fatalf("episode after rolled-back update: %v, first document kept %v", err, bytes.Equal(doc, c1.Document))
	}
	if v := read(t, s, "Patient", "pat1"); v.VersionID != 1 {
		t.Fatalf("patient at version %d after rollback, want 1", v.VersionID)
	}
	if vs, err := s.EpisodeResources(ctx, "ep1"); err != nil || len(vs) != 2 {
		t.Fatalf("episode resources after rollback: %v, %d", err, len(vs))
	}
}

func testAfterWriteTx(t *testing.T, open opener) {
	ctx := context.Background()
	s := migrated(t, open, newClock().now)
	c := change(nil, res("Patient", "pat1", "pat1", "a"))
	calls := 0
	after := func(ctx context.Context, tx Tx, res ApplyResult) error {
		calls++
		const q = `SELECT COUNT(*) FROM resource_version`
		var n int
		var err error
		switch s.Dialect() {
		case "postgres":
			if tx.SQL() != nil {
				t.Error("postgres Tx has a database/sql transaction")
			}
			err = tx.Pgx().QueryRow(ctx, q).Scan(&n)
		default:
			if tx.Pgx() != nil {
				t.Error("sqlite Tx has a pgx transaction")
			}
			err = tx.SQL().QueryRowContext(ctx, q).Scan(&n)
		}
		if err != nil || n != 1 || !res.Created {
			t.Errorf("inside the transaction: %v, %d versions, created %v; want 1, true", err, n, res.Created)
		}
		return nil
	}
	for range 2 {
		if _, err := s.ApplyEpisodeTx(ctx, "ep1", func([]byte, string) (EpisodeChange, error) { return c, nil }, after); err != nil {
			t.Fatalf("apply: %v", err)
		}
	}
	if calls != 1 {
		t.Fatalf("afterWrite called %d times, want 1 (not for the unchanged document)", calls)
	}
}

func testInvalidChange(t *testing.T, open opener) {
	ctx := context.Background()
	s := migrated(t, open, newClock().now)
	bad := map[string]EpisodeChange{
		"duplicate":   change(nil, res("Patient", "pat1", "pat1", "a"), res("Patient", "pat1", "pat1", "b")),
		"no document": {Resources: []Resource{res("Patient", "pat1", "pat1", "a")}},
		"no id":       change(nil, res("Patient", "", "pat1", "a")),
		"not json":    change(nil, Resource{Type: "Patient", ID: "pat1", Body: []byte("{")}),
	}
	for name, c := range bad {
		if _, err := s.ApplyEpisode(ctx, "ep1", func([]byte, string) (EpisodeChange, error) { return c, nil }); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	if n := countVersions(t, s); n != 0 {
		t.Fatalf("%d versions after invalid changes, want 0", n)
	}
}

func testNotFound(t *testing.T, open opener) {
	ctx := context.Background()
	s := migrated(t, open, newClock().now)
	apply(t, s, "ep1", change(nil, res("Patient", "pat1", "pat1", "a")))
	_, err := s.Read(ctx, "Patient", "nope")
	wantErr(t, "read", err, ErrNotFound)
	_, err = s.Read(ctx, "Observation", "pat1")
	wantErr(t, "read other type", err, ErrNotFound)
	_, err = s.VRead(ctx, "Patient", "nope", 1)
	wantErr(t, "vread", err, ErrNotFound)
	_, err = s.History(ctx, "Patient", "nope")
	wantErr(t, "history", err, ErrNotFound)
	_, err = s.Episode(ctx, "nope")
	wantErr(t, "episode", err, ErrNotFound)
	_, err = s.EpisodeResources(ctx, "nope")
	wantErr(t, "episode resources", err, ErrNotFound)
}

func testGone(t *testing.T, open opener) {
	ctx := context.Background()
	s := migrated(t, open, newClock().now)
	apply(t, s, "ep1", change(nil, res("Patient", "pat1", "pat1", "a")))
	// No API deletes yet; mark the version deleted as a later delete will.
	tx, err := s.drv.begin(ctx)
	if err != nil {
		t.Fatalf("begin: %v", err)
	}
	for _, q := range []string{`UPDATE resource SET deleted = $1`, `UPDATE resource_version SET deleted = $1`} {
		if err := tx.exec(ctx, q, true); err != nil {
			t.Fatalf("mark deleted: %v", err)
		}
	}
	if err := tx.commit(ctx); err != nil {
		t.Fatalf("commit: %v", err)
	}
	v, err := s.Read(ctx, "Patient", "pat1")
	wantErr(t, "read deleted", err, ErrGone)
	if v.VersionID != 1 {
		t.Fatalf("deleted version %d, want 1", v.VersionID)
	}
	_, err = s.VRead(ctx, "Patient", "pat1", 1)
	wantErr(t, "vread deleted", err, ErrGone)
	// The same content again undeletes it as a new version.
	got := apply(t, s, "ep1", change(nil, res("Patient", "pat1", "pat1", "a"), res("Observation", "ob1", "pat1", "a")))
	wantEntries(t, got.Entries, "Patient/pat1 v2 updated", "Observation/ob1 v1 created")
}

func testConcurrentSameEpisode(t *testing.T, open opener) {
	const n = 8
	s := migrated(t, open, newClock().now)
	results := make([]ApplyResult, n)
	run(t, n, func(i int) error {
		note := fmt.Sprint("doc ", i)
		var err error
		results[i], err = s.ApplyEpisode(context.Background(), "ep1", func([]byte, string) (EpisodeChange, error) {
			return change(nil, res("Patient", "pat1", "pat1", "a"), res("Observation", "ob1", "pat1", note)), nil
		})
		return err
	})
	created, seen := 0, map[int64]bool{}
	for _, r := range results {
		if r.Created {
			created++
		}
		seen[r.Entries[1].VersionID] = true
	}
	if created != 1 || len(seen) != n {
		t.Fatalf("%d results Created (want 1), %d distinct observation versions (want %d)", created, len(seen), n)
	}
	wantConsecutive(t, s, "Observation", "ob1", n)
	wantConsecutive(t, s, "Patient", "pat1", 1)
	wantSeqOrder(t, s)
}

func testConcurrentShared(t *testing.T, open opener) {
	const n = 8
	s := migrated(t, open, newClock().now)
	run(t, n, func(i int) error {
		pat := fmt.Sprint("pat", i)
		rs := []Resource{res("Patient", pat, pat, "a"),
			res("Practitioner", "shared-changing", "", fmt.Sprint("edit ", i)),
			res("Practitioner", "shared-same", "", "same"),
			res("Organization", "org", "", fmt.Sprint("edit ", i))}
		if i%2 == 1 { // the store, not the caller, must order the locks
			slices.Reverse(rs)
		}
		c := change(nil, rs...)
		_, err := s.ApplyEpisode(context.Background(), fmt.Sprint("ep", i), func([]byte, string) (EpisodeChange, error) { return c, nil })
		return err
	})
	wantConsecutive(t, s, "Practitioner", "shared-changing", n)
	wantConsecutive(t, s, "Organization", "org", n)
	wantConsecutive(t, s, "Practitioner", "shared-same", 1)
	wantSeqOrder(t, s)
	vs, err := s.EpisodeResources(context.Background(), "ep3")
	if err != nil || len(vs) != 4 {
		t.Fatalf("episode resources of ep3: %v, %d (want 4)", err, len(vs))
	}
}

func testLargeEpisode(t *testing.T, open opener) {
	s := migrated(t, open, newClock().now)
	const n = 2*chunkRows + 7 // several chunks of locking statements
	rs := make([]Resource, n)
	for i := range rs {
		rs[i] = res("Observation", fmt.Sprint("ob", i), "pat1", "a")
	}
	got := apply(t, s, "ep1", change(nil, rs...))
	if len(got.Entries) != n || got.Entries[n-1].Action != ActionCreated {
		t.Fatalf("%d entries, last %+v", len(got.Entries), got.Entries[len(got.Entries)-1])
	}
	rs[n-1] = res("Observation", fmt.Sprint("ob", n-1), "pat1", "b")
	got = apply(t, s, "ep1", change(nil, rs...))
	if e := got.Entries[n-1]; e.VersionID != 2 || e.Action != ActionUpdated || got.Entries[0].Action != ActionUnchanged {
		t.Fatalf("after one change: first %+v, last %+v", got.Entries[0], e)
	}
	if vs, err := s.EpisodeResources(context.Background(), "ep1"); err != nil || len(vs) != n {
		t.Fatalf("episode resources: %v, %d (want %d)", err, len(vs), n)
	}
}

// run calls f(0..n-1) concurrently and fails the test on any error.
func run(tb testing.TB, n int, f func(i int) error) {
	tb.Helper()
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { errs[i] = f(i) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		tb.Fatalf("concurrent apply: %v", err)
	}
}

// wantConsecutive checks that a resource has versions n..1 and that each
// body carries its own versionId.
func wantConsecutive(tb testing.TB, s *Store, typ, id string, n int) {
	tb.Helper()
	hist, err := s.History(context.Background(), typ, id)
	if err != nil {
		tb.Fatalf("history %s/%s: %v", typ, id, err)
	}
	if len(hist) != n {
		tb.Fatalf("%s/%s has %d versions, want %d", typ, id, len(hist), n)
	}
	for i, v := range hist {
		want := int64(n - i)
		if v.VersionID != want || !bytes.Contains(v.Body, fmt.Appendf(nil, `"versionId":"%d"`, want)) {
			tb.Fatalf("%s/%s history[%d] is version %d, want %d", typ, id, i, v.VersionID, want)
		}
	}
	if cur := read(tb, s, typ, id); cur.VersionID != int64(n) {
		tb.Fatalf("%s/%s current version %d, want %d", typ, id, cur.VersionID, n)
	}
}

// wantSeqOrder checks that seq orders each resource's versions like
// version_id does, and that the current row points at the newest seq.
func wantSeqOrder(tb testing.TB, s *Store) {
	tb.Helper()
	var bad int
	err := s.drv.queryRow(context.Background(), `SELECT COUNT(*) FROM resource_version a
		JOIN resource_version b ON a.type = b.type AND a.id = b.id AND a.version_id < b.version_id AND a.seq > b.seq`).Scan(&bad)
	if err != nil || bad != 0 {
		tb.Fatalf("seq order: %v, %d pairs out of order", err, bad)
	}
	err = s.drv.queryRow(context.Background(), `SELECT COUNT(*) FROM resource r
		WHERE r.seq <> (SELECT MAX(v.seq) FROM resource_version v WHERE v.type = r.type AND v.id = r.id)`).Scan(&bad)
	if err != nil || bad != 0 {
		tb.Fatalf("current seq: %v, %d resources not at their newest seq", err, bad)
	}
}

// countVersions counts every stored version.
func countVersions(tb testing.TB, s *Store) int {
	tb.Helper()
	var n int
	if err := s.drv.queryRow(context.Background(), `SELECT COUNT(*) FROM resource_version`).Scan(&n); err != nil {
		tb.Fatalf("count versions: %v", err)
	}
	return n
}
