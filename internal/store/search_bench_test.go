package store

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/kapgw/kapgw/internal/search"
)

// BenchmarkSearchScale measures Observation?patient=X&code=...&_count=20 as
// the store grows. The setup bulk-loads N Observations (50 per patient,
// five codes) straight into the version and index tables, as ApplyEpisode
// would have written them.
func BenchmarkSearchScale(b *testing.B) {
	for _, db := range []struct {
		name string
		open opener
	}{{"sqlite", openSQLiteTest}, {"postgres", openPostgresTest}} {
		for _, n := range []int{10_000, 100_000, 1_000_000} {
			b.Run(fmt.Sprintf("%s/%d", db.name, n), func(b *testing.B) {
				s := migrated(b, db.open, time.Now)
				bulkLoad(b, s, n)
				q, err := search.New().Parse("Observation", url.Values{
					"patient": {fmt.Sprint("p", n/100)}, "code": {"http://loinc.org|c3"}, "_count": {"20"}}, true)
				if err != nil {
					b.Fatal(err)
				}
				explain(b, s, q)
				ctx := context.Background()
				for b.Loop() {
					res, err := s.Search(ctx, SearchRequest{Query: q, Access: Access{All: true}})
					if err != nil || len(res.Hits) != 10 {
						b.Fatalf("search: %d hits, %v", len(res.Hits), err)
					}
				}
			})
		}
	}
}

// bulkLoad writes n Observations in large transactions.
func bulkLoad(b *testing.B, s *Store, n int) {
	b.Helper()
	ctx := context.Background()
	reg := search.New()
	const perTx = 20_000
	for start := 0; start < n; start += perTx {
		tx, err := s.drv.begin(ctx)
		if err != nil {
			b.Fatal(err)
		}
		var ix indexRows
		var versions [][]any
		for i := start; i < min(n, start+perTx); i++ {
			pat := fmt.Sprint("p", i/50)
			r := obs(fmt.Sprint("o", i), pat, fmt.Sprint("c", i%5), "2026-04-03T10:00:00Z")
			seq := int64(i + 1)
			versions = append(versions, []any{seq, r.Type, r.ID, int64(1), int64(seq), false, pat, "h", r.Body})
			ix.add(reg, versionRef{seq: seq, lastUpdated: seq}, r)
		}
		ix.closeOld = nil
		batch := insertRows("versions", `INSERT INTO resource_version
			(seq, type, id, version_id, last_updated, deleted, patient_id, content_hash, body) VALUES `, versions)
		if s.dialect.name == "postgres" {
			batch[0].sql = strings.Replace(batch[0].sql, "VALUES", "OVERRIDING SYSTEM VALUE VALUES", 1)
			for i := 1; i < len(batch); i++ {
				batch[i].sql = batch[0].sql[:strings.Index(batch[0].sql, "VALUES")] + batch[i].sql[strings.Index(batch[i].sql, "VALUES"):]
			}
		}
		if err := tx.execBatch(ctx, append(batch, ix.stmts()...)); err != nil {
			b.Fatal(err)
		}
		if err := tx.commit(ctx); err != nil {
			b.Fatal(err)
		}
	}
	if s.dialect.name == "postgres" {
		if err := s.drv.exec(ctx, `ANALYZE`); err != nil {
			b.Fatal(err)
		}
	}
}

// explain logs the query plan of a search's page query.
func explain(b *testing.B, s *Store, q search.Query) {
	b.Helper()
	var sb sqlBuilder
	where := sb.where(SearchRequest{Query: q, Access: Access{All: true}}, 1<<60)
	query := `SELECT v.seq FROM search_version v JOIN resource_version rv ON rv.seq = v.seq WHERE ` + where + ` ORDER BY v.seq LIMIT 21`
	prefix := "EXPLAIN QUERY PLAN "
	if s.dialect.name == "postgres" {
		prefix = "EXPLAIN "
	}
	rs, err := s.drv.query(context.Background(), prefix+query, sb.args...)
	if err != nil {
		b.Fatal(err)
	}
	defer rs.Close()
	var lines []string
	for rs.Next() {
		if s.dialect.name == "postgres" {
			var line string
			_ = rs.Scan(&line)
			lines = append(lines, line)
			continue
		}
		var id, parent, notused int
		var detail string
		_ = rs.Scan(&id, &parent, &notused, &detail)
		lines = append(lines, detail)
	}
	b.Logf("plan:\n%s", strings.Join(lines, "\n"))
}
