package store

import (
	"context"
	"database/sql"
	"errors"
	"sync"
)

// stmtCache keeps prepared statements by SQL text. modernc's SQLite parses
// every statement it is given, and parsing was about a third of the cost of
// writing an episode; the store's statements come from a small set of
// shapes, so preparing each once per connection removes that cost.
type stmtCache struct {
	db  *sql.DB
	max int // beyond this many texts, statements are run unprepared

	mu     sync.Mutex
	m      map[string]*sql.Stmt
	wanted map[string]bool
}

func newStmtCache(db *sql.DB, max int) *stmtCache {
	return &stmtCache{db: db, max: max, m: make(map[string]*sql.Stmt), wanted: make(map[string]bool)}
}

// get returns the prepared statement for query, preparing it on the pool
// if needed, or nil when the cache is full. No lock is held while
// preparing, so a caller that still holds a pooled connection (open rows)
// cannot block others. It must not be called while the caller holds the
// pool's only connection (see lookup).
func (c *stmtCache) get(ctx context.Context, query string) (*sql.Stmt, error) {
	c.mu.Lock()
	st, ok := c.m[query]
	full := len(c.m) >= c.max
	c.mu.Unlock()
	if ok || full {
		return st, nil
	}
	st, err := c.db.PrepareContext(ctx, anonymous(query))
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if have, dup := c.m[query]; dup {
		_ = st.Close()
		return have, nil
	}
	c.m[query] = st
	return st, nil
}

// lookup returns the prepared statement for query, or nil; a miss is
// remembered so that prepareWanted prepares it once the connection is free.
// The SQLite writer has a single connection, held by the transaction that
// calls lookup, so preparing there would wait for itself.
func (c *stmtCache) lookup(query string) *sql.Stmt {
	c.mu.Lock()
	defer c.mu.Unlock()
	if st, ok := c.m[query]; ok {
		return st
	}
	if len(c.m)+len(c.wanted) < c.max {
		c.wanted[query] = true
	}
	return nil
}

// prepareWanted prepares the statements lookup missed. It holds no lock
// while preparing: the pool's connection may be in use by the next
// transaction, which must still be able to look statements up. Failures are
// left for the next miss: the statements run unprepared meanwhile.
func (c *stmtCache) prepareWanted(ctx context.Context) {
	c.mu.Lock()
	queries := make([]string, 0, len(c.wanted))
	for q := range c.wanted {
		queries = append(queries, q)
		delete(c.wanted, q)
	}
	c.mu.Unlock()
	for _, q := range queries {
		st, err := c.db.PrepareContext(ctx, anonymous(q))
		if err != nil {
			continue
		}
		c.mu.Lock()
		if _, dup := c.m[q]; dup || len(c.m) >= c.max {
			_ = st.Close()
		} else {
			c.m[q] = st
		}
		c.mu.Unlock()
	}
}

func (c *stmtCache) close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	var errs []error
	for q, st := range c.m {
		errs = append(errs, st.Close())
		delete(c.m, q)
	}
	return errors.Join(errs...)
}

// cachedDB runs statements on a pool through the cache.
type cachedDB struct {
	db    *sql.DB
	cache *stmtCache
}

func (c cachedDB) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	st, err := c.cache.get(ctx, query)
	if err != nil || st == nil {
		return c.db.ExecContext(ctx, anonymous(query), args...)
	}
	return st.ExecContext(ctx, args...)
}

func (c cachedDB) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	st, err := c.cache.get(ctx, query)
	if err != nil || st == nil {
		return c.db.QueryRowContext(ctx, anonymous(query), args...)
	}
	return st.QueryRowContext(ctx, args...)
}

func (c cachedDB) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	st, err := c.cache.get(ctx, query)
	if err != nil || st == nil {
		return c.db.QueryContext(ctx, anonymous(query), args...)
	}
	return st.QueryContext(ctx, args...)
}

// cachedTx runs statements in a transaction through the cache; database/sql
// reuses a statement already prepared on the transaction's connection. The
// transaction's owner calls cache.prepareWanted after commit or rollback.
type cachedTx struct {
	tx    *sql.Tx
	cache *stmtCache
}

func (c cachedTx) stmt(ctx context.Context, query string) *sql.Stmt {
	st := c.cache.lookup(query)
	if st == nil {
		return nil
	}
	return c.tx.StmtContext(ctx, st)
}

func (c cachedTx) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if st := c.stmt(ctx, query); st != nil {
		return st.ExecContext(ctx, args...)
	}
	return c.tx.ExecContext(ctx, anonymous(query), args...)
}

func (c cachedTx) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	if st := c.stmt(ctx, query); st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	return c.tx.QueryRowContext(ctx, anonymous(query), args...)
}

func (c cachedTx) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if st := c.stmt(ctx, query); st != nil {
		return st.QueryContext(ctx, args...)
	}
	return c.tx.QueryContext(ctx, anonymous(query), args...)
}
