package store

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// TestSQLite runs the behaviour suite on SQLite files in temporary dirs.
func TestSQLite(t *testing.T) {
	t.Parallel()
	testStore(t, openSQLiteTest)
}

// TestPostgres runs the behaviour suite on PostgreSQL, one fresh schema per
// test, on the server KAPGW_TEST_DATABASE_URL names (scripts/test.sh starts
// one).
func TestPostgres(t *testing.T) {
	t.Parallel()
	testStore(t, openPostgresTest)
}

// openSQLiteTest opens an unmigrated SQLite store in a fresh directory.
func openSQLiteTest(tb testing.TB, now func() time.Time) *Store {
	tb.Helper()
	s, err := Open(context.Background(), Config{DataDir: filepath.Join(tb.TempDir(), "data")}, now)
	if err != nil {
		tb.Fatalf("open sqlite: %v", err)
	}
	tb.Cleanup(func() { _ = s.Close() })
	return s
}

// openPostgresTest opens an unmigrated PostgreSQL store on a fresh schema,
// dropped when the test ends.
func openPostgresTest(tb testing.TB, now func() time.Time) *Store {
	tb.Helper()
	base := os.Getenv("KAPGW_TEST_DATABASE_URL")
	if base == "" {
		tb.Fatal("KAPGW_TEST_DATABASE_URL is not set: run scripts/test.sh, which starts PostgreSQL")
	}
	ctx := context.Background()
	admin, err := pgx.Connect(ctx, base)
	if err != nil {
		tb.Fatalf("connect to KAPGW_TEST_DATABASE_URL: %v", err)
	}
	defer admin.Close(ctx)
	schema := "store_test_" + randomHex(tb)
	if _, err := admin.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		tb.Fatalf("create schema: %v", err)
	}
	tb.Cleanup(func() { dropSchema(tb, base, schema) })
	u, err := url.Parse(base)
	if err != nil {
		tb.Fatalf("parse KAPGW_TEST_DATABASE_URL: %v", err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	s, err := Open(ctx, Config{DatabaseURL: u.String()}, now)
	if err != nil {
		tb.Fatalf("open postgres: %v", err)
	}
	tb.Cleanup(func() { _ = s.Close() })
	return s
}

// dropSchema removes a test schema and everything in it.
func dropSchema(tb testing.TB, base, schema string) {
	tb.Helper()
	ctx := context.Background()
	admin, err := pgx.Connect(ctx, base)
	if err != nil {
		tb.Errorf("connect to drop schema: %v", err)
		return
	}
	defer admin.Close(ctx)
	if _, err := admin.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
		tb.Errorf("drop schema: %v", err)
	}
}

// randomHex returns 8 random hex digits.
func randomHex(tb testing.TB) string {
	tb.Helper()
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		tb.Fatalf("random: %v", err)
	}
	return hex.EncodeToString(b)
}

// clock is a test time source that moves 1.5 ms forward on every call, so
// that every call gives a distinct time with sub-millisecond digits.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock {
	return &clock{t: time.Date(2025, 3, 4, 5, 6, 7, 123456789, time.FixedZone("EST", -5*3600))}
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(1500 * time.Microsecond)
	return c.t
}

// last returns the time now last returned.
func (c *clock) last() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// res builds a test resource whose body carries note.
func res(typ, id, patientID, note string) Resource {
	body := fmt.Sprintf(`{"resourceType":%q,"id":%q,"text":{"status":"generated","div":%q}}`,
		typ, id, "<div>"+note+"</div>")
	return Resource{Type: typ, ID: id, PatientID: patientID, Body: []byte(body)}
}

// change builds an EpisodeChange whose document lists its resources' bodies.
func change(removed []string, rs ...Resource) EpisodeChange {
	var doc strings.Builder
	for _, r := range rs {
		doc.Write(r.Body)
	}
	sum := sha256.Sum256([]byte(doc.String()))
	c := EpisodeChange{Document: []byte(doc.String()), Digest: hex.EncodeToString(sum[:]), Resources: rs, Removed: map[string]bool{}}
	for _, k := range removed {
		c.Removed[k] = true
	}
	return c
}

// apply applies c to the episode and fails the test on error.
func apply(tb testing.TB, s *Store, episodeID string, c EpisodeChange) ApplyResult {
	tb.Helper()
	got, err := s.ApplyEpisode(context.Background(), episodeID, func([]byte, string) (EpisodeChange, error) {
		return c, nil
	})
	if err != nil {
		tb.Fatalf("apply episode %s: %v", episodeID, err)
	}
	return got
}

// wantEntries compares entries with want, written as "Type/id vN action".
func wantEntries(tb testing.TB, got []Entry, want ...string) {
	tb.Helper()
	var g []string
	for _, e := range got {
		g = append(g, fmt.Sprintf("%s/%s v%d %s", e.Type, e.ID, e.VersionID, e.Action))
	}
	if strings.Join(g, "; ") != strings.Join(want, "; ") {
		tb.Fatalf("entries:\n got %q\nwant %q", g, want)
	}
}

// read reads the current version of a resource and fails the test on error.
func read(tb testing.TB, s *Store, typ, id string) Version {
	tb.Helper()
	v, err := s.Read(context.Background(), typ, id)
	if err != nil {
		tb.Fatalf("read %s/%s: %v", typ, id, err)
	}
	return v
}

// wantErr fails the test unless err wraps target.
func wantErr(tb testing.TB, what string, err, target error) {
	tb.Helper()
	if !errors.Is(err, target) {
		tb.Fatalf("%s: error %v, want %v", what, err, target)
	}
}
