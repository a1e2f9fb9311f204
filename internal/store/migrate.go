package store

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"
)

// migrationFS holds the schema, one directory per dialect, one file per
// step named NNNN_description.sql. Applied steps are never edited: a change
// is a new file.
//
//go:embed migrations
var migrationFS embed.FS

// migration is one numbered schema step.
type migration struct {
	version int64
	name    string
	sql     string
}

// createMigrationTable records which steps ran; the same DDL suits both
// databases.
const createMigrationTable = `CREATE TABLE IF NOT EXISTS schema_migration (
    version    BIGINT PRIMARY KEY,
    name       TEXT NOT NULL,
    applied_at BIGINT NOT NULL
)`

// Migrate brings the schema up to date. It runs every pending step in one
// transaction, so a failure leaves the schema as it was, and running it
// again (or from several processes at once) is harmless.
func (s *Store) Migrate(ctx context.Context) error {
	steps, err := migrations(s.dialect)
	if err != nil {
		return err
	}
	tx, err := s.drv.begin(ctx)
	if err != nil {
		return fmt.Errorf("migrate: begin: %w", err)
	}
	defer func() { _ = tx.rollback(context.WithoutCancel(ctx)) }()
	if s.dialect.lockMigrate != "" {
		if err := tx.exec(ctx, s.dialect.lockMigrate); err != nil {
			return fmt.Errorf("migrate: lock: %w", err)
		}
	}
	if err := tx.exec(ctx, createMigrationTable); err != nil {
		return fmt.Errorf("migrate: create schema_migration: %w", err)
	}
	var have int64
	if err := tx.queryRow(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migration`).Scan(&have); err != nil {
		return fmt.Errorf("migrate: read schema version: %w", err)
	}
	for _, m := range steps {
		if m.version <= have {
			continue
		}
		if err := tx.exec(ctx, m.sql); err != nil {
			return fmt.Errorf("migrate: step %d %s: %w", m.version, m.name, err)
		}
		err := tx.exec(ctx, `INSERT INTO schema_migration (version, name, applied_at) VALUES ($1, $2, $3)`,
			m.version, m.name, s.now().UnixMilli())
		if err != nil {
			return fmt.Errorf("migrate: record step %d: %w", m.version, err)
		}
	}
	if err := tx.commit(ctx); err != nil {
		return fmt.Errorf("migrate: commit: %w", err)
	}
	return nil
}

// migrations returns the dialect's steps in version order.
func migrations(d dialect) ([]migration, error) {
	dir := path.Join("migrations", d.name)
	files, err := fs.ReadDir(migrationFS, dir)
	if err != nil {
		return nil, fmt.Errorf("list %s migrations: %w", d.name, err)
	}
	var steps []migration
	for _, f := range files {
		m, err := readMigration(dir, f.Name())
		if err != nil {
			return nil, err
		}
		steps = append(steps, m)
	}
	sort.Slice(steps, func(i, j int) bool { return steps[i].version < steps[j].version })
	for i, m := range steps {
		if m.version != int64(i+1) {
			return nil, fmt.Errorf("%s migrations: step %d is numbered %d", d.name, i+1, m.version)
		}
	}
	return steps, nil
}

// readMigration reads dir/NNNN_name.sql.
func readMigration(dir, file string) (migration, error) {
	num, name, ok := strings.Cut(strings.TrimSuffix(file, ".sql"), "_")
	version, err := strconv.ParseInt(num, 10, 64)
	if !ok || err != nil || !strings.HasSuffix(file, ".sql") {
		return migration{}, fmt.Errorf("migration %s/%s: want NNNN_name.sql", dir, file)
	}
	b, err := migrationFS.ReadFile(path.Join(dir, file))
	if err != nil {
		return migration{}, fmt.Errorf("read migration %s/%s: %w", dir, file, err)
	}
	return migration{version: version, name: name, sql: string(b)}, nil
}

// latestMigration is the version a fully migrated schema is at.
func latestMigration(d dialect) (int64, error) {
	steps, err := migrations(d)
	if err != nil {
		return 0, err
	}
	return int64(len(steps)), nil
}

// millis converts t to the integer milliseconds the schema stores.
func millis(t time.Time) int64 { return t.UnixMilli() }

// fromMillis converts stored milliseconds back to a UTC time.
func fromMillis(ms int64) time.Time { return time.UnixMilli(ms).UTC() }
