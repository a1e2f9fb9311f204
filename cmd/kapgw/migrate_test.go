package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	vault "github.com/hashicorp/vault/api"
	"github.com/jackc/pgx/v5"
)

// TestMigrateResolvesVaultRefs runs `kapgw migrate` with the database URL
// kept in the real dev Vault, as serve would read it: the PostgreSQL
// database it names gets the schema. A ref to a secret Vault does not
// hold fails without touching any database.
func TestMigrateResolvesVaultRefs(t *testing.T) {
	t.Parallel()
	addr, token := os.Getenv("KAPGW_TEST_VAULT_ADDR"), os.Getenv("KAPGW_TEST_VAULT_TOKEN")
	if addr == "" || token == "" {
		t.Fatal("KAPGW_TEST_VAULT_ADDR and KAPGW_TEST_VAULT_TOKEN must be set; run scripts/test.sh")
	}
	ctx := context.Background()
	dbURL := postgresURL(t)
	vc, err := vault.NewClient(&vault.Config{Address: addr})
	if err != nil {
		t.Fatal(err)
	}
	vc.SetToken(token)
	path := fmt.Sprintf("kapgw-test/migrate-%d", time.Now().UnixNano())
	if _, err := vc.KVv2("kv").Put(ctx, path, map[string]any{"url": dbURL}); err != nil {
		t.Fatalf("put database url in vault: %v", err)
	}
	env := map[string]string{"KAPGW_VAULT_ADDR": addr, "KAPGW_VAULT_TOKEN": token}
	getenv := func(k string) string { return env[k] }

	var out bytes.Buffer
	err = run(ctx, []string{"kapgw", "migrate", "--data-dir", t.TempDir(), "--database-url", "vault:kv/" + path + "#url"}, getenv, &out, io.Discard)
	if err != nil || !strings.Contains(out.String(), "migrated postgres database") {
		t.Fatalf("migrate with a vault: ref: err %v, output %q", err, out.String())
	}
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var tables int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM information_schema.tables WHERE table_name IN ('audit_event', 'exchange', 'river_job')`).Scan(&tables); err != nil || tables != 3 {
		t.Errorf("schema in the database Vault named: %d of 3 tables (%v)", tables, err)
	}

	err = run(ctx, []string{"kapgw", "migrate", "--data-dir", t.TempDir(), "--database-url", "vault:kv/" + path + "-missing#url"}, getenv, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "database url") {
		t.Errorf("migrate with a ref to no secret: %v", err)
	}
}
