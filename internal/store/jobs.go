package store

import (
	"database/sql"

	"github.com/jackc/pgx/v5/pgxpool"
)

// JobDB returns the database the job queue (River) runs on, exactly one of
// them non-nil: the SQLite writer connection (a single connection, as
// River's SQLite driver requires, shared with the store's own writes) or
// the PostgreSQL pool.
func (s *Store) JobDB() (*sql.DB, *pgxpool.Pool) {
	switch d := s.drv.(type) {
	case *sqliteDriver:
		return d.writer, nil
	case *pgDriver:
		return nil, d.pool
	}
	return nil, nil
}
