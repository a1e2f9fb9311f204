// Package pgtest gives tests a PostgreSQL database of their own: a fresh
// schema in the server named by KAPGW_TEST_DATABASE_URL (scripts/test.sh
// starts one), dropped when the test ends.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"testing"

	"github.com/jackc/pgx/v5"
)

// SchemaURL creates a schema named prefix plus random hex digits and
// returns the test database's URL with search_path set to it. It fails the
// test (never skips it) when KAPGW_TEST_DATABASE_URL is not set or the
// server cannot be reached.
func SchemaURL(tb testing.TB, prefix string) string {
	tb.Helper()
	base := os.Getenv("KAPGW_TEST_DATABASE_URL")
	if base == "" {
		tb.Fatal("KAPGW_TEST_DATABASE_URL is not set: run scripts/test.sh, which starts PostgreSQL")
	}
	u, err := url.Parse(base)
	if err != nil {
		tb.Fatalf("parse KAPGW_TEST_DATABASE_URL: %v", err)
	}
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		tb.Fatalf("random: %v", err)
	}
	schema := prefix + hex.EncodeToString(b)
	exec(tb, base, "CREATE SCHEMA "+schema, tb.Fatalf)
	tb.Cleanup(func() { exec(tb, base, "DROP SCHEMA "+schema+" CASCADE", tb.Errorf) })
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// exec runs one statement on its own connection to base, reporting a
// failure with fail.
func exec(tb testing.TB, base, sql string, fail func(string, ...any)) {
	tb.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		fail("connect to KAPGW_TEST_DATABASE_URL: %v", err)
		return
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql); err != nil {
		fail("%s: %v", sql, err)
	}
}
