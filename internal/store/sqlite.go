package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"go.opentelemetry.io/otel/trace"
	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
)

// sqliteDialect is SQLite's dialect.
func sqliteDialect() dialect {
	return dialect{name: "sqlite", byteOrder: "type, id"} // BINARY collation
}

// sqliteParams are the connection settings every SQLite connection gets:
// wait up to 5 s for a lock rather than fail, enforce foreign keys, and keep
// temporary structures (statement journals of multi-row statements, sorts)
// in memory rather than in temporary files: they never need to survive a
// crash, and writing them to disk was a tenth of an episode's write time.
const sqliteParams = "_pragma=busy_timeout(5000)&_pragma=foreign_keys(1)&_pragma=temp_store(MEMORY)"

// sqliteWriterParams are the writer connection's settings on top: WAL;
// synchronous=NORMAL, which in WAL mode fsyncs at checkpoints rather than at
// every commit (a committed episode survives a crash of the process, but an
// OS crash or power loss may lose the last commits; see docs/store.md); a
// 64 MiB page cache, so that the index pages an episode touches are read
// from memory; and an automatic checkpoint only past 16,000 WAL pages
// (64 MiB), a backstop: the checkpointer (checkpoint.go) checkpoints in the
// background. Transactions begin IMMEDIATE.
const sqliteWriterParams = "&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_pragma=cache_size(-65536)" +
	"&_pragma=wal_autocheckpoint(16000)&_txlock=immediate"

// sqliteDriver keeps two pools on one database file: a single writer
// connection, whose transactions begin IMMEDIATE so writers queue in Go and
// commit in order, and a pool of read-only connections that WAL lets run
// alongside the writer; and a background checkpointer.
type sqliteDriver struct {
	sqlQuerier // the readers
	writer     *sql.DB
	reader     *sql.DB
	writes     *stmtCache
	reads      *stmtCache
	checkpoint *checkpointer
}

// openSQLite opens (creating it if needed) dataDir/kapgw.db in WAL mode.
func openSQLite(ctx context.Context, dataDir string, tp trace.TracerProvider) (*sqliteDriver, error) {
	if dataDir == "" {
		return nil, errors.New("open sqlite: no data directory")
	}
	if strings.ContainsRune(dataDir, '?') {
		return nil, errors.New("open sqlite: data directory name contains '?'")
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("open sqlite: create data directory: %w", err)
	}
	path := filepath.Join(dataDir, "kapgw.db")
	writer, err := openSQL(tp, "sqlite", path+"?"+sqliteParams+sqliteWriterParams)
	if err != nil {
		return nil, fmt.Errorf("open sqlite writer: %w", err)
	}
	writer.SetMaxOpenConns(1)
	writer.SetMaxIdleConns(1)
	writer.SetConnMaxLifetime(0)
	// The writer connects first so that the file exists and is in WAL mode
	// before any reader opens it.
	if err := writer.PingContext(ctx); err != nil {
		_ = writer.Close()
		return nil, fmt.Errorf("open sqlite writer: %w", err)
	}
	reader, err := openSQL(tp, "sqlite", path+"?"+sqliteParams+"&_pragma=query_only(1)")
	if err != nil {
		_ = writer.Close()
		return nil, fmt.Errorf("open sqlite reader: %w", err)
	}
	reader.SetMaxOpenConns(8)
	reader.SetMaxIdleConns(8)
	ckpt, err := startCheckpointer(path + "?" + sqliteParams)
	if err != nil {
		_ = errors.Join(reader.Close(), writer.Close())
		return nil, fmt.Errorf("open sqlite checkpointer: %w", err)
	}
	reads := newStmtCache(reader, 256)
	return &sqliteDriver{sqlQuerier: sqlQuerier{cachedDB{reader, reads}}, writer: writer, reader: reader,
		writes: newStmtCache(writer, 256), reads: reads, checkpoint: ckpt}, nil
}

func (d *sqliteDriver) begin(ctx context.Context) (txn, error) {
	tx, err := d.writer.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	cached := cachedTx{tx: tx, cache: d.writes}
	return sqliteTx{sqlQuerier: sqlQuerier{cached}, tx: tx, conn: cached}, nil
}

// execAtomic begins a write transaction, runs stmts and commits.
func (d *sqliteDriver) execAtomic(ctx context.Context, stmts []stmt) error {
	tx, err := d.begin(ctx)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	if err := tx.execBatch(ctx, stmts); err != nil {
		_ = tx.rollback(context.WithoutCancel(ctx))
		return err
	}
	if err := tx.commit(ctx); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

func (d *sqliteDriver) ping(ctx context.Context) error {
	if err := d.writer.PingContext(ctx); err != nil {
		return err
	}
	return d.reader.PingContext(ctx)
}

func (d *sqliteDriver) close() error {
	return errors.Join(d.checkpoint.close(), d.reads.close(), d.writes.close(), d.reader.Close(), d.writer.Close())
}

var (
	_ driver = (*sqliteDriver)(nil)
	_ txn    = sqliteTx{}
)

// sqliteTx is a write transaction on the writer connection.
type sqliteTx struct {
	sqlQuerier
	tx   *sql.Tx
	conn cachedTx
}

func (t sqliteTx) execBatch(ctx context.Context, stmts []stmt) error {
	for _, st := range stmts {
		if _, err := t.conn.ExecContext(ctx, st.sql, st.args...); err != nil {
			return fmt.Errorf("%s: %w", st.what, err)
		}
	}
	return nil
}

// commit and rollback release the writer connection, then prepare the
// statements this transaction ran unprepared.
func (t sqliteTx) commit(ctx context.Context) error {
	err := t.tx.Commit()
	t.conn.cache.prepareWanted(ctx)
	return err
}

func (t sqliteTx) rollback(ctx context.Context) error {
	err := t.tx.Rollback()
	t.conn.cache.prepareWanted(ctx)
	return err
}

func (t sqliteTx) public() Tx { return Tx{sql: t.tx} }
