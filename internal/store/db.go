package store

import (
	"context"
	"database/sql"
	"errors"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// querier is the small SQL surface the store uses, over a pool or a
// transaction of either driver. Queries use $1-style placeholders, which
// both PostgreSQL and SQLite accept.
type querier interface {
	exec(ctx context.Context, query string, args ...any) error
	queryRow(ctx context.Context, query string, args ...any) scanner
	query(ctx context.Context, query string, args ...any) (rows, error)
}

// scanner is one result row.
type scanner interface {
	Scan(dest ...any) error
}

// rows is a result set.
type rows interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
	Close() error
}

// driver is one database: reads outside transactions, and transactions.
type driver interface {
	querier
	begin(ctx context.Context) (txn, error)
	// execAtomic runs stmts in order in one transaction of their own.
	execAtomic(ctx context.Context, stmts []stmt) error
	ping(ctx context.Context) error
	close() error
}

// txn is a transaction of either driver.
type txn interface {
	querier
	// execBatch runs stmts in order, in one round trip where it can.
	execBatch(ctx context.Context, stmts []stmt) error
	commit(ctx context.Context) error
	rollback(ctx context.Context) error
	public() Tx
}

// Tx is the transaction an episode is written in. It lets code outside the
// store add rows atomically with the episode, such as River jobs through
// InsertTx (riverpgxv5 takes Pgx(), riversqlite takes SQL()).
type Tx struct {
	pgx pgx.Tx
	sql *sql.Tx
}

// Pgx returns the PostgreSQL transaction, or nil on SQLite.
func (t Tx) Pgx() pgx.Tx { return t.pgx }

// SQL returns the SQLite transaction, or nil on PostgreSQL.
func (t Tx) SQL() *sql.Tx { return t.sql }

// dialect holds the few statements that differ between the databases.
type dialect struct {
	name string
	// forUpdate locks the selected rows until commit. SQLite needs none: its
	// write transactions begin IMMEDIATE, so there is only one writer.
	forUpdate string
	// lockSeq, run before the first version insert of a transaction, makes
	// seq values commit in the order they are assigned. Empty on SQLite.
	lockSeq string
	// lockMigrate serialises concurrent Migrate calls. Empty on SQLite.
	lockMigrate string
	// byteOrder is an ORDER BY list sorting resource rows by type then id
	// in byte order, the order Go sorts keys in.
	byteOrder string
}

// isNoRows reports whether err is either driver's "no rows".
func isNoRows(err error) bool {
	return errors.Is(err, sql.ErrNoRows) || errors.Is(err, pgx.ErrNoRows)
}

// sqlConn is what *sql.DB and *sql.Tx have in common.
type sqlConn interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// sqlQuerier adapts database/sql to querier.
type sqlQuerier struct{ c sqlConn }

func (q sqlQuerier) exec(ctx context.Context, query string, args ...any) error {
	_, err := q.c.ExecContext(ctx, query, args...)
	return err
}

func (q sqlQuerier) queryRow(ctx context.Context, query string, args ...any) scanner {
	return q.c.QueryRowContext(ctx, query, args...)
}

func (q sqlQuerier) query(ctx context.Context, query string, args ...any) (rows, error) {
	return q.c.QueryContext(ctx, query, args...)
}

// pgConn is what *pgxpool.Pool and pgx.Tx have in common.
type pgConn interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// pgQuerier adapts pgx to querier.
type pgQuerier struct{ c pgConn }

func (q pgQuerier) exec(ctx context.Context, query string, args ...any) error {
	_, err := q.c.Exec(ctx, query, args...)
	return err
}

func (q pgQuerier) queryRow(ctx context.Context, query string, args ...any) scanner {
	return q.c.QueryRow(ctx, query, args...)
}

func (q pgQuerier) query(ctx context.Context, query string, args ...any) (rows, error) {
	r, err := q.c.Query(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	return pgRows{r}, nil
}

// pgRows gives pgx.Rows the database/sql Close signature.
type pgRows struct{ pgx.Rows }

func (r pgRows) Close() error {
	r.Rows.Close()
	return r.Rows.Err()
}
