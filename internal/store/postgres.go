package store

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.opentelemetry.io/otel/trace"
)

// Advisory lock keys (arbitrary, fixed; "kapgw" in ASCII then a number).
const (
	pgSeqLockKey     = 0x6b61706777_01
	pgMigrateLockKey = 0x6b61706777_02
)

// postgresDialect is PostgreSQL's dialect.
//
// On seq: a sequence (identity column) hands out numbers when rows are
// inserted, but transactions commit in any order, so a reader paging
// history with "seq > last seen" could see seq 11 committed while 10 is
// still in flight, move past 10 and never see it. To prevent that, every
// transaction that writes versions first takes one transaction-scoped
// advisory lock, after it has locked its episode and resource rows (so the
// lock order is always rows then seq lock, and there is no deadlock), and
// holds it until commit. seq is therefore assigned and made visible in the
// same order. The price is that the version-writing tail of concurrent
// episode transactions runs one at a time; building and locking still run
// in parallel.
func postgresDialect() dialect {
	return dialect{
		name:        "postgres",
		forUpdate:   " FOR UPDATE",
		lockSeq:     fmt.Sprintf("SELECT pg_advisory_xact_lock(%d)", int64(pgSeqLockKey)),
		lockMigrate: fmt.Sprintf("SELECT pg_advisory_xact_lock(%d)", int64(pgMigrateLockKey)),
		byteOrder:   `type COLLATE "C", id COLLATE "C"`,
	}
}

// pgDriver is a pgx connection pool. It uses pgx natively (not
// database/sql) so that River's riverpgxv5 can share its transactions.
type pgDriver struct {
	pgQuerier
	pool *pgxpool.Pool
}

// openPostgres connects to url and checks that the server answers.
func openPostgres(ctx context.Context, url string, tp trace.TracerProvider) (*pgDriver, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("open postgres: parse database URL: %w", err)
	}
	cfg.ConnConfig.Tracer = newPGTracer(tp)
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open postgres: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("open postgres: ping: %w", err)
	}
	return &pgDriver{pgQuerier: pgQuerier{pool}, pool: pool}, nil
}

func (d *pgDriver) begin(ctx context.Context) (txn, error) {
	tx, err := d.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.ReadCommitted})
	if err != nil {
		return nil, err
	}
	return pgTx{pgQuerier: pgQuerier{tx}, tx: tx}, nil
}

// execAtomic sends stmts as one pipelined batch outside any transaction:
// PostgreSQL runs the statements before the batch's single Sync as one
// implicit transaction (all or none), so a group commit costs one round
// trip instead of three (BEGIN, the batch, COMMIT).
func (d *pgDriver) execAtomic(ctx context.Context, stmts []stmt) error {
	return sendBatch(ctx, d.pool, stmts)
}

// batchSender is what a pool and a transaction have in common.
type batchSender interface {
	SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults
}

// sendBatch runs stmts in order in one round trip through to.
func sendBatch(ctx context.Context, to batchSender, stmts []stmt) error {
	if len(stmts) == 0 {
		return nil
	}
	b := &pgx.Batch{}
	for _, st := range stmts {
		b.Queue(st.sql, st.args...)
	}
	br := to.SendBatch(ctx, b)
	for _, st := range stmts {
		if _, err := br.Exec(); err != nil {
			_ = br.Close()
			return fmt.Errorf("%s: %w", st.what, err)
		}
	}
	return br.Close()
}

func (d *pgDriver) ping(ctx context.Context) error { return d.pool.Ping(ctx) }

func (d *pgDriver) close() error {
	d.pool.Close()
	return nil
}

var (
	_ driver = (*pgDriver)(nil)
	_ txn    = pgTx{}
)

// pgTx is a read-committed transaction from the pool.
type pgTx struct {
	pgQuerier
	tx pgx.Tx
}

// execBatch sends stmts as one pgx batch: one round trip.
func (t pgTx) execBatch(ctx context.Context, stmts []stmt) error {
	return sendBatch(ctx, t.tx, stmts)
}

func (t pgTx) commit(ctx context.Context) error   { return t.tx.Commit(ctx) }
func (t pgTx) rollback(ctx context.Context) error { return t.tx.Rollback(ctx) }
func (t pgTx) public() Tx                         { return Tx{pgx: t.tx} }
