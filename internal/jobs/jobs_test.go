package jobs_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/riverqueue/river"

	"github.com/kapgw/kapgw/internal/jobs"
	"github.com/kapgw/kapgw/internal/pgtest"
	"github.com/kapgw/kapgw/internal/store"
)

// noteArgs is a job that records its note.
type noteArgs struct {
	Note string `json:"note"`
}

func (noteArgs) Kind() string { return "note" }

type noteWorker struct {
	river.WorkerDefaults[noteArgs]
	mu    sync.Mutex
	notes []string
}

func (w *noteWorker) Work(_ context.Context, j *river.Job[noteArgs]) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.notes = append(w.notes, j.Args.Note)
	return nil
}

func (w *noteWorker) seen() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.notes...)
}

func openStore(t *testing.T, dialect string) *store.Store {
	t.Helper()
	cfg := store.Config{DataDir: filepath.Join(t.TempDir(), "data")}
	if dialect == "postgres" {
		cfg.DatabaseURL = schemaURL(t)
	}
	st, err := store.Open(context.Background(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	if err := st.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	return st
}

func schemaURL(t *testing.T) string {
	t.Helper()
	return pgtest.SchemaURL(t, "jobs_test_")
}

func change(note string) store.BuildFunc {
	return func([]byte, string) (store.EpisodeChange, error) {
		return store.EpisodeChange{Document: []byte(`{"note":"` + note + `"}`), Digest: note}, nil
	}
}

// TestJobsCommitWithTheEpisode: a job inserted in a committed episode
// transaction is worked; one inserted in a rolled-back transaction never is.
func TestJobsCommitWithTheEpisode(t *testing.T) {
	t.Parallel()
	for _, dialect := range []string{"sqlite", "postgres"} {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			st := openStore(t, dialect)
			for range 2 { // idempotent
				if err := jobs.Migrate(ctx, st); err != nil {
					t.Fatal(err)
				}
			}
			w := &noteWorker{}
			workers := river.NewWorkers()
			river.AddWorker(workers, w)
			q, err := jobs.New(st, slog.New(slog.NewTextHandler(io.Discard, nil)), jobs.Config{Workers: workers, FetchPollInterval: 50 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			if err := q.Start(ctx); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = q.Stop(context.Background()) })
			insert := func(note string, fail error) store.AfterWriteFunc {
				return func(ctx context.Context, tx store.Tx, _ store.ApplyResult) error {
					if err := q.InsertTx(ctx, tx, noteArgs{Note: note}, nil); err != nil {
						return err
					}
					return fail
				}
			}
			boom := errors.New("boom")
			if _, err := st.ApplyEpisodeTx(ctx, "ep-1", change("rolled-back"), insert("rolled-back", boom)); !errors.Is(err, boom) {
				t.Fatalf("rolled back apply: %v", err)
			}
			if _, err := st.ApplyEpisodeTx(ctx, "ep-1", change("committed"), insert("committed", nil)); err != nil {
				t.Fatal(err)
			}
			deadline := time.Now().Add(20 * time.Second)
			for len(w.seen()) == 0 && time.Now().Before(deadline) {
				time.Sleep(20 * time.Millisecond)
			}
			time.Sleep(200 * time.Millisecond)
			if got := w.seen(); len(got) != 1 || got[0] != "committed" {
				t.Errorf("worked %v, want only the committed job", got)
			}
		})
	}
}
