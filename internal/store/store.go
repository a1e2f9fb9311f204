// Package store keeps every version of the FHIR resources kapgw serves, and
// the KAP episode documents they were mapped from, in SQLite (the embedded
// default) or PostgreSQL (production).
//
// Both databases sit behind the same behaviour: each accepted episode
// written atomically with the episode locked (on SQLite, the episodes queued
// behind the single writer share a transaction), a new
// resource version only when the resource's content changed, and a global
// sequence number (seq) on every version, assigned in commit order, for
// history paging.
package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/kapgw/kapgw/internal/search"
)

// ErrNotFound reports that an episode, resource or version does not exist.
// It is wrapped with context; callers test for it with errors.Is.
var ErrNotFound = errors.New("not found")

// ErrGone reports that a resource (or the version asked for) is deleted, so
// that the FHIR API can answer 410 rather than 404.
var ErrGone = errors.New("gone")

// Config selects and locates the database.
type Config struct {
	// DataDir holds the SQLite database (kapgw.db) when DatabaseURL is empty.
	// It is created with mode 0700 if missing.
	DataDir string
	// DatabaseURL, when it starts with postgres:// or postgresql://, selects
	// PostgreSQL. Pool settings such as pool_max_conns may be given in it.
	DatabaseURL string
	// Tracer, when set, traces every statement (no text, no arguments).
	Tracer trace.TracerProvider
}

// Resource is one resource to write. Body is its JSON without
// meta.versionId and meta.lastUpdated: the store stamps those.
type Resource struct {
	Type string
	ID   string
	// PatientID is the id of the Patient resource this resource belongs to:
	// empty for shared resources such as Practitioner, the Patient's own id
	// for the Patient.
	PatientID string
	Body      []byte

	// prepared is what Prepare derived from Body ahead of the write.
	prepared *prepared
}

// Version is one stored version of a resource. Body carries meta.versionId
// and meta.lastUpdated, so it can be served as it is.
type Version struct {
	Type        string
	ID          string
	VersionID   int64
	LastUpdated time.Time
	Deleted     bool
	Body        []byte
}

// Action says what ApplyEpisode did to one resource.
type Action string

// The actions ApplyEpisode reports.
const (
	// ActionCreated is the first version of a resource.
	ActionCreated Action = "created"
	// ActionUpdated is a new version of an existing resource.
	ActionUpdated Action = "updated"
	// ActionUnchanged means the content was identical: no version was written.
	ActionUnchanged Action = "unchanged"
	// ActionRemoved is a new version of a resource the episode retired.
	ActionRemoved Action = "removed"
)

// Entry reports the outcome for one resource of an applied episode.
type Entry struct {
	Type      string
	ID        string
	VersionID int64
	Action    Action
}

// EpisodeChange is everything one accepted KAP document writes.
type EpisodeChange struct {
	// Document is the accepted KAP document, stored as it is. It is PHI.
	Document []byte
	// Digest is the hex SHA-256 of Document.
	Digest string
	// Resources is every resource of the episode in its new state, retired
	// ones included.
	Resources []Resource
	// Removed holds the "Type/id" keys of the resources in Resources that
	// are being retired, so that their Action is ActionRemoved when their
	// content changed.
	Removed map[string]bool
	// Access replaces the episode's patient_access rows (see access.go).
	Access []PatientAccess
}

// ApplyResult reports what ApplyEpisode wrote.
type ApplyResult struct {
	// Created is true for the first accepted document of an episode.
	Created bool
	// Entries has one entry per resource of the change, in its order.
	Entries []Entry
}

// Store is the versioned resource store. It is safe for concurrent use.
type Store struct {
	drv     driver
	dialect dialect
	now     func() time.Time
	// commits batches episode writes on SQLite (groupcommit.go); nil on
	// PostgreSQL, whose episodes commit concurrently.
	commits *committer
	// reg extracts search index values.
	reg *search.Registry
}

// Open connects to the database cfg selects. It does not migrate: call
// Migrate (kapgw migrate and start-up do). now supplies lastUpdated times;
// nil means time.Now.
func Open(ctx context.Context, cfg Config, now func() time.Time) (*Store, error) {
	if now == nil {
		now = time.Now
	}
	switch {
	case strings.HasPrefix(cfg.DatabaseURL, "postgres://"), strings.HasPrefix(cfg.DatabaseURL, "postgresql://"):
		drv, err := openPostgres(ctx, cfg.DatabaseURL, cfg.Tracer)
		if err != nil {
			return nil, err
		}
		return &Store{drv: drv, dialect: postgresDialect(), now: now, reg: search.New()}, nil
	case cfg.DatabaseURL != "":
		return nil, errors.New("open store: database URL must start with postgres:// or postgresql://")
	default:
		drv, err := openSQLite(ctx, cfg.DataDir, cfg.Tracer)
		if err != nil {
			return nil, err
		}
		s := &Store{drv: drv, dialect: sqliteDialect(), now: now, reg: search.New()}
		s.commits = startCommitter(s)
		return s, nil
	}
}

// Close releases the database connections. Episodes still queued for
// SQLite's committer fail; the batch in progress is committed first.
func (s *Store) Close() error {
	if s.commits != nil {
		s.commits.close()
	}
	if err := s.drv.close(); err != nil {
		return fmt.Errorf("close %s store: %w", s.dialect.name, err)
	}
	return nil
}

// Dialect names the database in use: "sqlite" or "postgres".
func (s *Store) Dialect() string {
	return s.dialect.name
}

// Ready reports whether the database is reachable and fully migrated, so
// that readiness probes fail until kapgw migrate has run.
func (s *Store) Ready(ctx context.Context) error {
	if err := s.drv.ping(ctx); err != nil {
		return fmt.Errorf("ping %s: %w", s.dialect.name, err)
	}
	want, err := latestMigration(s.dialect)
	if err != nil {
		return err
	}
	var have int64
	err = s.drv.queryRow(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migration`).Scan(&have)
	if err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	if have != want {
		return fmt.Errorf("schema at version %d, want %d: run kapgw migrate", have, want)
	}
	return nil
}
