package store

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

func TestOpenRejectsBadConfig(t *testing.T) {
	t.Parallel()
	bad := map[string]Config{
		"no data dir":   {},
		"mysql url":     {DatabaseURL: "mysql://u@h/db"},
		"question mark": {DataDir: filepath.Join(t.TempDir(), "a?b")},
	}
	for name, cfg := range bad {
		if s, err := Open(context.Background(), cfg, nil); err == nil {
			_ = s.Close()
			t.Errorf("%s: Open succeeded", name)
		}
	}
}

func TestSQLiteDataDirAndReopen(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "nested", "data")
	s, err := Open(ctx, Config{DataDir: dir}, newClock().now)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	if s.Dialect() != "sqlite" {
		t.Fatalf("dialect %q, want sqlite", s.Dialect())
	}
	if err := s.Migrate(ctx); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	apply(t, s, "ep1", change(nil, res("Patient", "pat1", "pat1", "a")))
	if err := s.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	fi, err := os.Stat(dir)
	if err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("data dir: %v, mode %v; want 0700", err, fi.Mode().Perm())
	}

	s, err = Open(ctx, Config{DataDir: dir}, newClock().now)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer s.Close()
	if err := s.Ready(ctx); err != nil {
		t.Fatalf("ready after reopen: %v", err)
	}
	if v := read(t, s, "Patient", "pat1"); v.VersionID != 1 {
		t.Fatalf("after reopen: version %d, want 1", v.VersionID)
	}
	var mode string
	if err := s.drv.queryRow(ctx, `PRAGMA journal_mode`).Scan(&mode); err != nil || mode != "wal" {
		t.Fatalf("journal mode %q (%v), want wal", mode, err)
	}
}

func TestPostgresDialect(t *testing.T) {
	t.Parallel()
	s := openPostgresTest(t, nil)
	if s.Dialect() != "postgres" {
		t.Fatalf("dialect %q, want postgres", s.Dialect())
	}
}
