package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/kapgw/kapgw/internal/jobs"
	"github.com/kapgw/kapgw/internal/secrets"
	"github.com/kapgw/kapgw/internal/store"
)

// runMigrate creates or upgrades the schema and exits. A database URL given
// as a vault: (or local:) reference is resolved exactly as serve resolves
// it: through Vault when one is configured, else the development store. A
// plain URL needs no secret store, so none is opened.
func runMigrate(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, err := loadConfig("migrate", args, getenv, stderr)
	if err != nil {
		return err
	}
	dbURL := cfg.DatabaseURL
	if secrets.IsRef(dbURL) {
		log := newTracedLogger(stderr, cfg.LogLevel)
		tel, err := newTelemetry(ctx, getenv, hooks{})
		if err != nil {
			return fmt.Errorf("telemetry: %w", err)
		}
		defer shutdownTelemetry(log, tel, cfg.ShutdownTimeout)
		sec, stopSecrets, err := openSecrets(ctx, log, cfg, tel)
		if err != nil {
			return fmt.Errorf("secrets: %w", err)
		}
		defer stopSecrets()
		if dbURL, err = sec.Resolve(ctx, dbURL); err != nil {
			return fmt.Errorf("database url: %w", err)
		}
	}
	st, err := openMigrated(ctx, store.Config{DataDir: cfg.DataDir, DatabaseURL: dbURL})
	if err != nil {
		return err
	}
	defer st.Close()
	fmt.Fprintf(stdout, "migrated %s database\n", st.Dialect())
	return nil
}

// openMigrated opens the store c describes and brings its schema and the
// job queue's up to date, as kapgw migrate does and kapgw serve does at
// start-up.
func openMigrated(ctx context.Context, c store.Config) (*store.Store, error) {
	st, err := store.Open(ctx, c, time.Now)
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	if err := st.Migrate(ctx); err != nil {
		_ = st.Close()
		return nil, fmt.Errorf("migrate: %w", err)
	}
	if err := jobs.Migrate(ctx, st); err != nil {
		_ = st.Close()
		return nil, fmt.Errorf("migrate: %w", err)
	}
	return st, nil
}
