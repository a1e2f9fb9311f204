// Package jobs runs the gateway's outbound side effects as River jobs in
// the store's own database, so that a job is inserted in the same
// transaction as the write that causes it (InsertTx with the store.Tx of
// ApplyEpisodeTx) and survives restarts.
//
// River is generic over the transaction type, which differs between its
// SQLite and PostgreSQL drivers; Queue hides that behind one small type.
package jobs

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/riverdriver/riversqlite"
	"github.com/riverqueue/river/rivermigrate"
	"github.com/riverqueue/river/rivertype"
	"go.opentelemetry.io/otel/trace"

	"github.com/kapgw/kapgw/internal/store"
)

// Migrate brings River's own tables up to date in the store's database.
// kapgw migrate and start-up call it after store.Migrate.
func Migrate(ctx context.Context, st *store.Store) error {
	db, pool := st.JobDB()
	var err error
	if pool != nil {
		err = migratePostgres(ctx, pool)
	} else {
		err = migrateSQLite(ctx, db)
	}
	if err != nil {
		return fmt.Errorf("migrate river: %w", err)
	}
	return nil
}

// pgMigrateLockKey is the advisory lock instances hold while migrating
// River's tables ("kapgwriv").
const pgMigrateLockKey = 0x6b61706777726976

// migratePostgres runs River's migrations holding a session advisory lock,
// so that replicas starting together migrate one at a time (River's own
// migrator does not serialise concurrent runs, and some of its steps cannot
// share one transaction).
func migratePostgres(ctx context.Context, pool *pgxpool.Pool) error {
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", int64(pgMigrateLockKey)); err != nil {
		return fmt.Errorf("lock: %w", err)
	}
	defer func() {
		_, _ = conn.Exec(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", int64(pgMigrateLockKey))
	}()
	m, err := rivermigrate.New(riverpgxv5.New(pool), nil)
	if err != nil {
		return err
	}
	_, err = m.Migrate(ctx, rivermigrate.DirectionUp, nil)
	return err
}

// migrateSQLite runs River's migrations in one transaction of the store's
// writer, whose transactions begin IMMEDIATE: a second process opening the
// same database waits for the first one's migrations instead of racing it.
func migrateSQLite(ctx context.Context, db *sql.DB) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback() }()
	m, err := rivermigrate.New(riversqlite.New(db), nil)
	if err != nil {
		return err
	}
	if _, err := m.MigrateTx(ctx, tx, rivermigrate.DirectionUp, nil); err != nil {
		return err
	}
	return tx.Commit()
}

// Config tunes the queue.
type Config struct {
	// Workers are the job kinds this process works; nil inserts only.
	Workers *river.Workers
	// MaxWorkers bounds concurrent jobs; default 4.
	MaxWorkers int
	// FetchPollInterval is how often idle workers look for jobs; default 1s
	// (tests set it lower).
	FetchPollInterval time.Duration
	// TracerProvider traces job work as a continuation of the inserting
	// request's trace; nil traces nothing but still stores the trace
	// context with each job.
	TracerProvider trace.TracerProvider
	// RescueAfter is how long a job may run before River treats it as
	// stuck (its process died) and retries it; a worker's own Timeout, when
	// longer, still applies. Default River's, an hour.
	RescueAfter time.Duration
}

// Queue inserts and works jobs on whichever database the store uses.
type Queue struct {
	sqlite *river.Client[sqliteTx]
	pg     *river.Client[pgTx]
}

// New returns a queue on st's database. Call Start to work jobs.
func New(st *store.Store, log *slog.Logger, cfg Config) (*Queue, error) {
	// Completed jobs are kept 30 days so that unique jobs (one NewRx per
	// MessageID) stay unique across re-sent documents.
	rc := &river.Config{Logger: log, FetchPollInterval: cfg.FetchPollInterval, CompletedJobRetentionPeriod: 30 * 24 * time.Hour,
		RescueStuckJobsAfter: cfg.RescueAfter}
	rc.Middleware = []rivertype.Middleware{newTraceMiddleware(cfg.TracerProvider)}
	if cfg.FetchPollInterval > 0 {
		rc.FetchCooldown = min(cfg.FetchPollInterval, 100*time.Millisecond)
	}
	if cfg.Workers != nil {
		rc.Workers = cfg.Workers
		rc.Queues = map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: orDefault(cfg.MaxWorkers, 4)}}
	}
	db, pool := st.JobDB()
	var q Queue
	var err error
	if pool != nil {
		q.pg, err = river.NewClient(riverpgxv5.New(pool), rc)
	} else {
		q.sqlite, err = river.NewClient(riversqlite.New(db), rc)
	}
	if err != nil {
		return nil, fmt.Errorf("new river client: %w", err)
	}
	return &q, nil
}

func orDefault(v, def int) int {
	if v > 0 {
		return v
	}
	return def
}

// InsertTx inserts a job in tx, the transaction of the write that causes
// it, so the job exists exactly when that write commits.
func (q *Queue) InsertTx(ctx context.Context, tx store.Tx, args river.JobArgs, opts *river.InsertOpts) error {
	var err error
	switch {
	case q.pg != nil && tx.Pgx() != nil:
		_, err = q.pg.InsertTx(ctx, tx.Pgx(), args, opts)
	case q.sqlite != nil && tx.SQL() != nil:
		_, err = q.sqlite.InsertTx(ctx, tx.SQL(), args, opts)
	default:
		err = errors.New("transaction is not of the queue's database")
	}
	if err != nil {
		return fmt.Errorf("insert %s job: %w", args.Kind(), err)
	}
	return nil
}

// Start works jobs until Stop.
func (q *Queue) Start(ctx context.Context) error {
	if q.pg != nil {
		return q.pg.Start(ctx)
	}
	return q.sqlite.Start(ctx)
}

// Stop waits for running jobs to finish, or ctx to end.
func (q *Queue) Stop(ctx context.Context) error {
	if q.pg != nil {
		return q.pg.Stop(ctx)
	}
	return q.sqlite.Stop(ctx)
}
