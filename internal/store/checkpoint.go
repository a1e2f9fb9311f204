package store

import (
	"context"
	"database/sql"
	"sync"
	"time"
)

// checkpointEvery is how often the background checkpointer copies
// committed WAL pages back into the database file.
const checkpointEvery = 100 * time.Millisecond

// checkpointer runs SQLite's WAL checkpoints on a connection of its own, so
// that the single writer connection does not: with the writer's automatic
// checkpoint every 1,000 pages, about one episode in three paid for copying
// every page of the last few commits into the database file and for the
// fsyncs that go with it (a quarter of the serialised write time), while the
// next episodes queued behind it. A PASSIVE checkpoint runs alongside the
// writer and the readers and never blocks them. The writer keeps a large
// automatic checkpoint threshold only as a backstop, should this one fall
// behind.
type checkpointer struct {
	db   *sql.DB
	stop context.CancelFunc
	done sync.WaitGroup
}

// startCheckpointer opens a connection to the database at dsn and
// checkpoints it every checkpointEvery until close.
func startCheckpointer(dsn string) (*checkpointer, error) {
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	ctx, stop := context.WithCancel(context.Background())
	c := &checkpointer{db: db, stop: stop}
	c.done.Add(1)
	go c.run(ctx)
	return c, nil
}

func (c *checkpointer) run(ctx context.Context) {
	defer c.done.Done()
	tick := time.NewTicker(checkpointEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			// A failed checkpoint (busy, or the disk) is retried at the next
			// tick; the writer's automatic checkpoint is the backstop.
			_, _ = c.db.ExecContext(ctx, "PRAGMA wal_checkpoint(PASSIVE)")
		}
	}
}

// close stops the checkpoints and closes the connection; the writer's own
// close checkpoints what is left.
func (c *checkpointer) close() error {
	c.stop()
	c.done.Wait()
	return c.db.Close()
}
