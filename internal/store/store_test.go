package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kapgw/kapgw/internal/pgtest"
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
	s, err := Open(context.Background(), Config{DatabaseURL: pgtest.SchemaURL(tb, "store_test_")}, now)
	if err != nil {
		tb.Fatalf("open postgres: %v", err)
	}
	tb.Cleanup(func() { _ = s.Close() })
	return s
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
