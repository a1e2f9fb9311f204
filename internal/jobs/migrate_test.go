package jobs_test

import (
	"context"
	"path/filepath"
	"sync"
	"testing"

	"github.com/kapgw/kapgw/internal/jobs"
	"github.com/kapgw/kapgw/internal/store"
)

// TestMigrateConcurrently starts four instances on one database at once,
// as replicas (or two processes on one data directory) do: every one's
// migrations must succeed, one after another.
func TestMigrateConcurrently(t *testing.T) {
	t.Parallel()
	for _, dialect := range []string{"sqlite", "postgres"} {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			cfg := store.Config{DataDir: filepath.Join(t.TempDir(), "data")}
			if dialect == "postgres" {
				cfg.DatabaseURL = schemaURL(t)
			}
			ctx := context.Background()
			var wg sync.WaitGroup
			errs := make([]error, 4)
			for i := range errs {
				st, err := store.Open(ctx, cfg, nil)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { _ = st.Close() })
				wg.Go(func() {
					if errs[i] = st.Migrate(ctx); errs[i] == nil {
						errs[i] = jobs.Migrate(ctx, st)
					}
				})
			}
			wg.Wait()
			for i, err := range errs {
				if err != nil {
					t.Errorf("instance %d: %v", i, err)
				}
			}
		})
	}
}
