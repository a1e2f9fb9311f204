package store

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"testing"
	"time"
)

// batch drives SQLite's committer deterministically: hold keeps the writer
// busy with one episode until release, while queue lines episodes up behind
// it, in order, so that they commit in one batch.
type batch struct {
	tb      testing.TB
	s       *Store
	unblock chan struct{}
	queued  int
	results []chan applied
}

// applied is one queued episode's outcome.
type applied struct {
	res ApplyResult
	err error
	tx  *sql.Tx // the transaction its afterWrite saw
}

func hold(tb testing.TB, s *Store) *batch {
	tb.Helper()
	b := &batch{tb: tb, s: s, unblock: make(chan struct{})}
	started := make(chan struct{})
	go func() {
		_, _ = s.ApplyEpisode(context.Background(), "blocker", func([]byte, string) (EpisodeChange, error) {
			close(started)
			<-b.unblock
			return change(nil, res("Patient", "blocker", "blocker", "a")), nil
		})
	}()
	<-started
	return b
}

// queue submits an episode and waits until it is queued behind the others.
func (b *batch) queue(ctx context.Context, episodeID string, build BuildFunc, after AfterWriteFunc) <-chan applied {
	b.tb.Helper()
	out := make(chan applied, 1)
	go func() {
		var tx *sql.Tx
		wrapped := func(ctx context.Context, t Tx, r ApplyResult) error {
			tx = t.SQL()
			if after != nil {
				return after(ctx, t, r)
			}
			return nil
		}
		r, err := b.s.ApplyEpisodeTx(ctx, episodeID, build, wrapped)
		out <- applied{r, err, tx}
	}()
	b.queued++
	deadline := time.Now().Add(5 * time.Second)
	for len(b.s.commits.queue) < b.queued {
		if time.Now().After(deadline) {
			b.tb.Fatalf("episode %s not queued", episodeID)
		}
		time.Sleep(time.Millisecond)
	}
	return out
}

func (b *batch) release() { close(b.unblock) }

func doc(c EpisodeChange) BuildFunc {
	return func([]byte, string) (EpisodeChange, error) { return c, nil }
}

func TestGroupCommitFailureStaysInItsEpisode(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := migrated(t, openSQLiteTest, newClock().now)
	boom := errors.New("boom")
	b := hold(t, s)
	ok1 := b.queue(ctx, "ok1", doc(change(nil, res("Patient", "p1", "p1", "a"), res("Practitioner", "shared", "", "1"))), nil)
	badBuild := b.queue(ctx, "bad-build", func([]byte, string) (EpisodeChange, error) { return EpisodeChange{}, boom }, nil)
	// This one writes its change and a row of its own through Tx.SQL(),
	// then fails: both must roll back, the episodes around it not.
	badAfter := b.queue(ctx, "bad-after", doc(change(nil, res("Patient", "p2", "p2", "a"), res("Practitioner", "shared", "", "2"))),
		func(ctx context.Context, tx Tx, _ ApplyResult) error {
			if _, err := tx.SQL().ExecContext(ctx, `INSERT INTO episode (id) VALUES ('side-bad')`); err != nil {
				return err
			}
			return boom
		})
	ok2 := b.queue(ctx, "ok2", doc(change(nil, res("Patient", "p3", "p3", "a"), res("Practitioner", "shared", "", "3"))),
		func(ctx context.Context, tx Tx, _ ApplyResult) error {
			_, err := tx.SQL().ExecContext(ctx, `INSERT INTO episode (id) VALUES ('side-ok')`)
			return err
		})
	b.release()

	a1, a2 := <-ok1, <-ok2
	if a1.err != nil || a2.err != nil {
		t.Fatalf("good episodes: %v, %v", a1.err, a2.err)
	}
	if a1.tx != a2.tx {
		t.Fatal("the good episodes were not committed in one batch")
	}
	wantErr(t, "failing build", (<-badBuild).err, boom)
	wantErr(t, "failing afterWrite", (<-badAfter).err, boom)
	for _, ep := range []string{"bad-build", "bad-after"} {
		_, err := s.Episode(ctx, ep)
		wantErr(t, "episode "+ep, err, ErrNotFound)
	}
	_, err := s.Read(ctx, "Patient", "p2")
	wantErr(t, "patient of the failed episode", err, ErrNotFound)
	wantEpisodeRows(t, s, "side-bad", 0)
	wantEpisodeRows(t, s, "side-ok", 1)
	// The shared practitioner got versions from ok1 and ok2 only.
	wantConsecutive(t, s, "Practitioner", "shared", 2)
	if v := read(t, s, "Practitioner", "shared"); !bytes.Contains(v.Body, []byte("<div>3</div>")) {
		t.Fatalf("shared practitioner is %s, want ok2's", v.Body)
	}
	wantSeqOrder(t, s)
}

func TestGroupCommitSameEpisodeInOrder(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := migrated(t, openSQLiteTest, newClock().now)
	c1 := change(nil, res("Patient", "p1", "p1", "a"), res("Observation", "o1", "p1", "first"))
	c2 := change(nil, res("Patient", "p1", "p1", "a"), res("Observation", "o1", "p1", "second"))
	b := hold(t, s)
	first := b.queue(ctx, "ep1", doc(c1), nil)
	second := b.queue(ctx, "ep1", func(prev []byte, _ string) (EpisodeChange, error) {
		if !bytes.Equal(prev, c1.Document) {
			return EpisodeChange{}, fmt.Errorf("previous document %q, want the first", prev)
		}
		return c2, nil
	}, nil)
	b.release()
	r1, r2 := <-first, <-second
	if r1.err != nil || r2.err != nil {
		t.Fatalf("apply: %v, %v", r1.err, r2.err)
	}
	if r1.tx != r2.tx {
		t.Fatal("not committed in one batch")
	}
	if !r1.res.Created || r2.res.Created {
		t.Fatalf("Created %v, %v; want true, false", r1.res.Created, r2.res.Created)
	}
	wantEntries(t, r2.res.Entries, "Patient/p1 v1 unchanged", "Observation/o1 v2 updated")
	wantConsecutive(t, s, "Observation", "o1", 2)
	if got, err := s.Episode(ctx, "ep1"); err != nil || !bytes.Equal(got, c2.Document) {
		t.Fatalf("episode document: %v, second kept %v", err, bytes.Equal(got, c2.Document))
	}
	wantSeqOrder(t, s)
}

// TestGroupCommitStampsInOrder checks that seq and lastUpdated grow with
// the order of the episodes within a batch, even with a stopped clock.
func TestGroupCommitStampsInOrder(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	stopped := time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)
	s := migrated(t, openSQLiteTest, func() time.Time { return stopped })
	const n = 6
	b := hold(t, s)
	outs := make([]<-chan applied, n)
	for i := range n {
		id := fmt.Sprint("p", i)
		outs[i] = b.queue(ctx, fmt.Sprint("ep", i), doc(change(nil, res("Patient", id, id, "a"))), nil)
	}
	b.release()
	var lastSeq, lastMillis int64
	for i, out := range outs {
		if a := <-out; a.err != nil {
			t.Fatalf("episode %d: %v", i, a.err)
		}
		var seq, updated int64
		err := s.drv.queryRow(ctx, `SELECT seq, last_updated FROM resource_version WHERE type = 'Patient' AND id = $1`,
			fmt.Sprint("p", i)).Scan(&seq, &updated)
		if err != nil {
			t.Fatalf("read p%d: %v", i, err)
		}
		if seq <= lastSeq || updated <= lastMillis {
			t.Fatalf("episode %d: seq %d, lastUpdated %d; not after %d, %d", i, seq, updated, lastSeq, lastMillis)
		}
		lastSeq, lastMillis = seq, updated
	}
}

func TestGroupCommitCancelledWhileQueued(t *testing.T) {
	t.Parallel()
	s := migrated(t, openSQLiteTest, newClock().now)
	b := hold(t, s)
	ctx, cancel := context.WithCancel(context.Background())
	built := false
	out := b.queue(ctx, "ep1", func([]byte, string) (EpisodeChange, error) {
		built = true
		return change(nil, res("Patient", "p1", "p1", "a")), nil
	}, nil)
	after := b.queue(context.Background(), "ep2", doc(change(nil, res("Patient", "p2", "p2", "a"))), nil)
	cancel()
	// The caller leaves before the writer is free.
	wantErr(t, "cancelled while queued", (<-out).err, context.Canceled)
	b.release()
	if a := <-after; a.err != nil {
		t.Fatalf("episode behind the cancelled one: %v", a.err)
	}
	if built {
		t.Fatal("the cancelled episode was built")
	}
	_, err := s.Episode(context.Background(), "ep1")
	wantErr(t, "cancelled episode", err, ErrNotFound)
}

func TestGroupCommitCloseFailsQueued(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := migrated(t, openSQLiteTest, newClock().now)
	b := hold(t, s)
	out := b.queue(ctx, "ep1", doc(change(nil, res("Patient", "p1", "p1", "a"))), nil)
	closed := make(chan error, 1)
	go func() { closed <- s.Close() }()
	<-s.commits.quit
	b.release()
	if err := <-closed; err != nil {
		t.Fatalf("close: %v", err)
	}
	if a := <-out; !errors.Is(a.err, errClosed) {
		t.Fatalf("episode queued at close: %v, want %v", a.err, errClosed)
	}
	if _, err := s.ApplyEpisode(ctx, "ep2", doc(change(nil, res("Patient", "p2", "p2", "a")))); !errors.Is(err, errClosed) {
		t.Fatalf("apply after close: %v, want %v", err, errClosed)
	}
}

func TestGroupCommitPanicStaysInItsEpisode(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := migrated(t, openSQLiteTest, newClock().now)
	b := hold(t, s)
	recovered := make(chan any, 1)
	go func() {
		defer func() { recovered <- recover() }()
		_, _ = s.ApplyEpisode(ctx, "panics", func([]byte, string) (EpisodeChange, error) { panic("kaboom") })
	}()
	b.queued++
	for len(s.commits.queue) < b.queued {
		time.Sleep(time.Millisecond)
	}
	ok := b.queue(ctx, "ok", doc(change(nil, res("Patient", "p1", "p1", "a"))), nil)
	b.release()
	if p := <-recovered; p != "kaboom" {
		t.Fatalf("caller recovered %v, want the build's panic", p)
	}
	if a := <-ok; a.err != nil {
		t.Fatalf("episode after the panicking one: %v", a.err)
	}
	_, err := s.Episode(ctx, "panics")
	wantErr(t, "panicking episode", err, ErrNotFound)
}

// wantEpisodeRows checks how many episode rows have id.
func wantEpisodeRows(tb testing.TB, s *Store, id string, want int) {
	tb.Helper()
	var n int
	if err := s.drv.queryRow(context.Background(), `SELECT COUNT(*) FROM episode WHERE id = $1`, id).Scan(&n); err != nil || n != want {
		tb.Fatalf("episode rows %s: %v, %d, want %d", id, err, n, want)
	}
}
