package store

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/kapgw/kapgw/internal/search"
)

func TestSearchSQLite(t *testing.T) {
	t.Parallel()
	testSearch(t, openSQLiteTest)
}

func TestSearchPostgres(t *testing.T) {
	t.Parallel()
	testSearch(t, openPostgresTest)
}

// testSearch is the search behaviour suite both databases run.
func testSearch(t *testing.T, open opener) {
	t.Helper()
	tests := map[string]func(*testing.T, opener){
		"Params":              testSearchParams,
		"PagingIsASnapshot":   testSearchSnapshot,
		"Access":              testSearchAccess,
		"Includes":            testSearchIncludes,
		"PollerMissesNothing": testPollerMissesNothing,
	}
	for name, test := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			test(t, open)
		})
	}
}

// obs is an Observation of patient pat with a LOINC code and a date.
func obs(id, pat, code, date string) Resource {
	body := fmt.Sprintf(`{"resourceType":"Observation","id":%q,"status":"final",`+
		`"code":{"coding":[{"system":"http://loinc.org","code":%q}]},"subject":{"reference":"Patient/%s"},`+
		`"encounter":{"reference":"Encounter/enc-%s"},"effectiveDateTime":%q}`, id, code, pat, pat, date)
	return Resource{Type: "Observation", ID: id, PatientID: pat, Body: []byte(body)}
}

func patient(id string) Resource {
	return Resource{Type: "Patient", ID: id, PatientID: id, Body: fmt.Appendf(nil, `{"resourceType":"Patient","id":%q}`, id)}
}

// find runs a search given as a query string and returns the ids found.
func find(tb testing.TB, s *Store, typ, query string, a Access, page Page) (SearchResult, []string) {
	tb.Helper()
	vals, err := url.ParseQuery(query)
	if err != nil {
		tb.Fatal(err)
	}
	q, err := search.New().Parse(typ, vals, true)
	if err != nil {
		tb.Fatalf("parse %s?%s: %v", typ, query, err)
	}
	res, err := s.Search(context.Background(), SearchRequest{Query: q, Access: a, Page: page})
	if err != nil {
		tb.Fatalf("search %s?%s: %v", typ, query, err)
	}
	var ids []string
	for _, h := range res.Hits {
		ids = append(ids, h.ID)
	}
	return res, ids
}

func wantIDs(tb testing.TB, what string, got []string, want ...string) {
	tb.Helper()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		tb.Fatalf("%s: got %v, want %v", what, got, want)
	}
}

var all = Access{All: true}

func testSearchParams(t *testing.T, open opener) {
	s := migrated(t, open, newClock().now)
	apply(t, s, "ep-1", change(nil, patient("p1"), obs("o1", "p1", "44249-1", "2026-04-03T10:00:00Z"),
		obs("o2", "p1", "69737-5", "2026-05-01T10:00:00Z"), obs("o3", "p2", "44249-1", "2025-12-31T23:00:00Z")))
	tests := []struct{ query, want string }{
		{"patient=p1", "[o1 o2]"},
		{"subject=Patient/p1&code=http://loinc.org|44249-1", "[o1]"},
		{"code=44249-1", "[o1 o3]"},
		{"code=|44249-1", "[]"},
		{"date=2026", "[o1 o2]"},
		{"date=2026-04", "[o1]"},
		{"date=ge2026-04-03", "[o1 o2]"},
		{"date=lt2026-01-01", "[o3]"},
		{"_id=o2,o3", "[o2 o3]"},
		{"_sort=-date", "[o2 o1 o3]"},
		{"_sort=-_lastUpdated&_count=2", "[o3 o2]"},
		{"encounter=enc-p2", "[o3]"},
		{"status=final&patient=p2", "[o3]"},
	}
	for _, tt := range tests {
		_, got := find(t, s, "Observation", tt.query, all, Page{})
		if fmt.Sprint(got) != tt.want && !(tt.want == "[]" && got == nil) {
			t.Errorf("Observation?%s: got %v, want %s", tt.query, got, tt.want)
		}
	}
}

func testSearchSnapshot(t *testing.T, open opener) {
	s := migrated(t, open, newClock().now)
	var rs []Resource
	for i := range 5 {
		rs = append(rs, obs(fmt.Sprint("o", i), "p1", "x", "2026-01-01"))
	}
	apply(t, s, "ep-1", change(nil, rs...))
	res, ids := find(t, s, "Observation", "_count=2&_total=accurate", all, Page{})
	wantIDs(t, "page 1", ids, "o0", "o1")
	if res.Total != 5 || !res.More {
		t.Fatalf("total %d more %v, want 5 true", res.Total, res.More)
	}
	// o0 and o3 change between pages: page 2 and 3 still show the snapshot.
	rs[0], rs[3] = obs("o0", "p1", "y", "2026-01-01"), obs("o3", "p1", "y", "2026-01-01")
	apply(t, s, "ep-1", change(nil, rs...))
	last := res.Hits[len(res.Hits)-1].Key
	res2, ids := find(t, s, "Observation", "_count=2", all, Page{AsOf: res.AsOf, After: &last})
	wantIDs(t, "page 2", ids, "o2", "o3")
	if res2.Hits[1].VersionID != 1 {
		t.Fatalf("page 2 o3 is version %d, want 1 (the snapshot)", res2.Hits[1].VersionID)
	}
	back := res2.Hits[0].Key
	_, ids = find(t, s, "Observation", "_count=2", all, Page{AsOf: res.AsOf, After: &back, Backward: true})
	wantIDs(t, "previous page", ids, "o0", "o1")
	_, ids = find(t, s, "Observation", "code=y", all, Page{})
	wantIDs(t, "new search", ids, "o0", "o3")
}

func testSearchAccess(t *testing.T, open opener) {
	s := migrated(t, open, newClock().now)
	apply(t, s, "ep-1", change(nil, patient("p1"), obs("o1", "p1", "x", "2026-01-01"),
		Resource{Type: "Practitioner", ID: "dr", Body: []byte(`{"resourceType":"Practitioner","id":"dr"}`)}))
	apply(t, s, "ep-2", change(nil, patient("p2"), obs("o2", "p2", "x", "2026-01-01")))
	now := time.Now()
	ctx := context.Background()
	tx, err := s.drv.begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	err = tx.exec(ctx, `INSERT INTO patient_access (episode_id, patient_id, org_id, sharing_from, sharing_until)
		VALUES ('ep-1', 'p1', 'org-a', $1, NULL), ('ep-2', 'p2', 'org-a', $1, $2), ('ep-2', 'p2', 'org-b', NULL, NULL)`,
		now.Add(-time.Hour).UnixMilli(), now.Add(-time.Minute).UnixMilli())
	if err := errors.Join(err, tx.commit(ctx)); err != nil {
		t.Fatalf("insert access: %v", err)
	}
	orgA := Access{Orgs: []string{"org-a"}, Now: now}
	_, ids := find(t, s, "Observation", "", orgA, Page{})
	wantIDs(t, "org-a (p2's consent revoked)", ids, "o1")
	_, ids = find(t, s, "Observation", "", Access{Orgs: []string{"org-b"}, Now: now}, Page{})
	wantIDs(t, "org-b (no consent)", ids)
	_, ids = find(t, s, "Practitioner", "", Access{Now: now}, Page{})
	wantIDs(t, "shared resources", ids, "dr")
	for _, c := range []struct {
		id   string
		want bool
	}{{"p1", true}, {"p2", false}} {
		if got, err := s.Visible(context.Background(), orgA, "Patient", c.id); err != nil || got != c.want {
			t.Fatalf("Visible(%s) = %v, %v; want %v", c.id, got, err, c.want)
		}
	}
	h, err := s.HistoryPage(context.Background(), HistoryRequest{Type: "Observation", Count: 10, Access: orgA})
	if err != nil || len(h.Hits) != 1 {
		t.Fatalf("type history for org-a: %d hits, %v; want 1", len(h.Hits), err)
	}
}

func testSearchIncludes(t *testing.T, open opener) {
	s := migrated(t, open, newClock().now)
	enc := Resource{Type: "Encounter", ID: "enc-p1", PatientID: "p1", Body: []byte(`{"resourceType":"Encounter","id":"enc-p1","subject":{"reference":"Patient/p1"}}`)}
	prov := Resource{Type: "Provenance", ID: "pv", PatientID: "p1", Body: []byte(`{"resourceType":"Provenance","id":"pv","target":[{"reference":"Observation/o1"}]}`)}
	apply(t, s, "ep-1", change(nil, patient("p1"), enc, obs("o1", "p1", "x", "2026-01-01"), prov))
	res, _ := find(t, s, "Observation", "_include=Observation:encounter&_revinclude=Provenance:target&_include:iterate=Encounter:subject", all, Page{})
	var got []string
	for _, v := range res.Included {
		got = append(got, v.Type+"/"+v.ID)
	}
	wantIDs(t, "included", got, "Encounter/enc-p1", "Provenance/pv", "Patient/p1")
}

// testPollerMissesNothing runs writers and a poller at the same time: the
// poller asks for _lastUpdated=gt{the latest lastUpdated it has seen}
// sorted by _lastUpdated and must see every version ever written.
func testPollerMissesNothing(t *testing.T, open opener) {
	s := migrated(t, open, time.Now)
	const writers, rounds = 4, 15
	var wg sync.WaitGroup
	done := make(chan struct{})
	for w := range writers {
		wg.Go(func() {
			for r := range rounds {
				apply(t, s, fmt.Sprint("ep-", w), change(nil, obs(fmt.Sprint("o", w), "p", fmt.Sprint(r), "2026-01-01"),
					obs(fmt.Sprint("q", w), "p", fmt.Sprint(r), "2026-01-01")))
			}
		})
	}
	go func() { wg.Wait(); close(done) }()
	seen := map[string]bool{}
	var since time.Time
	poll := func() {
		query := "_sort=_lastUpdated&_count=7"
		if !since.IsZero() {
			query += "&_lastUpdated=gt" + since.UTC().Format("2006-01-02T15:04:05.000Z")
		}
		var page Page
		for {
			res, _ := find(t, s, "Observation", query, all, page)
			for _, h := range res.Hits {
				seen[fmt.Sprint(h.ID, "/", h.VersionID)] = true
				since = h.LastUpdated
			}
			if !res.More {
				return
			}
			k := res.Hits[len(res.Hits)-1].Key
			page = Page{AsOf: res.AsOf, After: &k}
		}
	}
	for running := true; running; {
		select {
		case <-done:
			running = false
		default:
		}
		poll()
	}
	poll()
	// A poller only sees the versions current when it looks; every version
	// it saw and the final ones must be there, and it must have seen each
	// resource's last version.
	for w := range writers {
		for _, p := range []string{"o", "q"} {
			if k := fmt.Sprint(p, w, "/", rounds); !seen[k] {
				t.Errorf("poller never saw %s", k)
			}
		}
	}
}
