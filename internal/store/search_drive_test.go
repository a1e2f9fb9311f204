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

// TestSearchDrivenPlan checks that a search starting from one reference or
// one system|code walks that value's index in seq order: no temporary
// B-tree for the ORDER BY and no list of every match built first, so a
// page costs about the same however many resources match.
func TestSearchDrivenPlan(t *testing.T) {
	t.Parallel()
	s := migrated(t, openSQLiteTest, time.Now)
	tests := []struct {
		typ, query, index string
	}{
		{"Observation", "patient=Patient/p1&code=http://loinc.org|c3&_count=20", "search_ref_ref"},
		{"Observation", "code=http://loinc.org|c3&_count=20", "search_token_code"},
		{"Observation", "subject=Patient/p1&_sort=-_lastUpdated&_count=5", "search_ref_ref"},
		{"Observation", "encounter=Encounter/enc-p1&status=final&_count=20", "search_ref_ref"},
	}
	for _, tc := range tests {
		vals, err := url.ParseQuery(tc.query)
		if err != nil {
			t.Fatal(err)
		}
		q, err := search.New().Parse(tc.typ, vals, true)
		if err != nil {
			t.Fatal(err)
		}
		sql, args := pageQuery(SearchRequest{Query: q, Access: Access{Orgs: []string{"org"}, Now: time.Now()}}, 1<<40)
		plan := queryPlan(t, s, sql, args)
		if !strings.Contains(plan, tc.index) || strings.Contains(plan, "TEMP B-TREE") || strings.Contains(plan, "LIST SUBQUERY") {
			t.Errorf("%s?%s: plan does not walk %s in order:\n%s", tc.typ, tc.query, tc.index, plan)
		}
	}
}

// queryPlan returns SQLite's EXPLAIN QUERY PLAN of query, one step a line.
func queryPlan(tb testing.TB, s *Store, query string, args []any) string {
	tb.Helper()
	rs, err := s.drv.query(context.Background(), "EXPLAIN QUERY PLAN "+query, args...)
	if err != nil {
		tb.Fatal(err)
	}
	defer rs.Close()
	var lines []string
	for rs.Next() {
		var id, parent, notused int
		var detail string
		if err := rs.Scan(&id, &parent, &notused, &detail); err != nil {
			tb.Fatal(err)
		}
		lines = append(lines, detail)
	}
	return strings.Join(lines, "\n")
}

// TestSearchDrivenNoRepeats checks, on both databases, that a resource
// naming the driving value twice is found once, and that paging by the
// driving index neither skips nor repeats.
func TestSearchDrivenNoRepeats(t *testing.T) {
	t.Parallel()
	for name, open := range map[string]opener{"sqlite": openSQLiteTest, "postgres": openPostgresTest} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			s := migrated(t, open, time.Now)
			twice := Resource{Type: "Observation", ID: "twice", PatientID: "p1", Body: []byte(`{"resourceType":"Observation","id":"twice","status":"final",` +
				`"code":{"coding":[{"system":"http://loinc.org","code":"c3"},{"system":"http://loinc.org","code":"c3"}]},"subject":{"reference":"Patient/p1"}}`)}
			rs := []Resource{patient("p1"), twice}
			var want []string
			for i := range 7 {
				id := fmt.Sprintf("o%d", i)
				rs = append(rs, obs(id, "p1", "c3", "2026-04-03"))
				want = append(want, id)
			}
			if _, err := s.PutResources(context.Background(), rs); err != nil {
				t.Fatal(err)
			}
			_, ids := find(t, s, "Observation", "code=http://loinc.org|c3&_count=50", Access{All: true}, Page{})
			wantIDs(t, "code search", ids, append([]string{"twice"}, want...)...)
			var paged []string
			page := Page{}
			for range 10 {
				res, ids := find(t, s, "Observation", "patient=Patient/p1&_count=3", Access{All: true}, page)
				paged = append(paged, ids...)
				if !res.More {
					break
				}
				last := res.Hits[len(res.Hits)-1]
				page = Page{AsOf: res.AsOf, After: &last.Key}
			}
			wantIDs(t, "pages of patient=p1", paged, append([]string{"twice"}, want...)...)
		})
	}
}
