package store

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/kapgw/kapgw/internal/search"
)

// Key is a search result's place in its order: the sort value (the seq for
// _lastUpdated order, the date's start for date order) and the seq.
type Key struct {
	Sort, Seq int64
}

// Page says which page of a search to return. The zero Page is the first.
type Page struct {
	// AsOf is the seq the search runs as of (0: the latest). Every page of
	// one search uses the AsOf its first page returned, so the pages form
	// one consistent snapshot however many writes happen in between.
	AsOf int64
	// After (or, with Backward, Before) is the key of the last (first)
	// result of the neighbouring page; nil for the first page.
	After    *Key
	Backward bool
}

// SearchRequest is one search as the store runs it.
type SearchRequest struct {
	Query search.Query
	// Compartment, when set, limits the search to one patient's resources
	// (Query.Type may then be empty, and Types lists the types wanted, nil
	// for all): Patient/{id}/$everything.
	Compartment string
	Types       []string
	Access      Access
	Page        Page
}

// Hit is one search result with its key.
type Hit struct {
	Version
	Key Key
}

// SearchResult is one page of a search.
type SearchResult struct {
	AsOf int64
	Hits []Hit
	// More reports another page in the direction of the request.
	More bool
	// Total is the number of matches, or -1 when not asked for.
	Total int
	// Included are the _include and _revinclude results.
	Included []Version
}

// Search runs one page of a search. Every value goes to the database as a
// bound parameter.
func (s *Store) Search(ctx context.Context, r SearchRequest) (SearchResult, error) {
	res := SearchResult{AsOf: r.Page.AsOf, Total: -1}
	if res.AsOf == 0 {
		if err := s.drv.queryRow(ctx, `SELECT COALESCE(MAX(seq), 0) FROM search_version`).Scan(&res.AsOf); err != nil {
			return res, fmt.Errorf("search: read latest seq: %w", err)
		}
	}
	if r.Query.Total {
		var b sqlBuilder
		where := b.where(r, res.AsOf)
		if err := s.drv.queryRow(ctx, `SELECT COUNT(*) FROM search_version v WHERE `+where, b.args...).Scan(&res.Total); err != nil {
			return res, fmt.Errorf("search %s: count: %w", r.Query.Type, err)
		}
	}
	if r.Query.OnlyCount || r.Query.Count == 0 {
		return res, nil
	}
	q, args := pageQuery(r, res.AsOf)
	hits, err := s.hits(ctx, q, args...)
	if err != nil {
		return res, fmt.Errorf("search %s: %w", r.Query.Type, err)
	}
	if len(hits) > r.Query.Count {
		hits, res.More = hits[:r.Query.Count], true
	}
	if r.Page.Backward {
		slices.Reverse(hits)
	}
	res.Hits = hits
	res.Included, err = s.includes(ctx, r, res.AsOf, hits)
	return res, err
}

// pageQuery is the query for one page of r as of asof, and its arguments.
func pageQuery(r SearchRequest, asof int64) (string, []any) {
	var b sqlBuilder
	from, sortCol, where := "search_version v", "v.seq", ""
	switch {
	case r.Query.Sort == search.ByDate || r.Query.Sort == search.ByDateDesc:
		sortCol = "v.sort_date"
	case drivable(r):
		// Walk the driving value's index in seq order and stop at the
		// page's end, however many resources match it.
		var d string
		from, d = b.drive(r.Query.Type, byDrivingOrder(r.Query.Conds)[0])
		sortCol = "d.seq"
		where = d + " AND d.seq <= " + b.arg(asof) + " AND " + b.whereFrom(r, asof, true)
	}
	if where == "" {
		where = b.where(r, asof)
	}
	desc := r.Query.Sort == search.ByLastUpdatedDesc || r.Query.Sort == search.ByDateDesc
	if r.Page.Backward {
		desc = !desc
	}
	cmp, dir := ">", "ASC"
	if desc {
		cmp, dir = "<", "DESC"
	}
	order := fmt.Sprintf("%s %s, v.seq %s", sortCol, dir, dir)
	k := r.Page.After
	switch {
	case sortCol == "d.seq":
		// d.seq is v.seq: one sort key, which the index yields.
		order = "d.seq " + dir
		if k != nil {
			where += fmt.Sprintf(" AND d.seq %s %s", cmp, b.arg(k.Seq))
		}
	case k != nil:
		where += fmt.Sprintf(" AND (%s %s %s OR (%s = %s AND v.seq %s %s))",
			sortCol, cmp, b.arg(k.Sort), sortCol, b.arg(k.Sort), cmp, b.arg(k.Seq))
	}
	q := fmt.Sprintf(`SELECT %s, %s FROM %s JOIN resource_version rv ON rv.seq = v.seq
		WHERE %s ORDER BY %s LIMIT %s`,
		sortCol, hitColumns, from, where, order, b.arg(r.Query.Count+1))
	return q, b.args
}

// hitColumns are the columns hits reads after the sort value.
const hitColumns = `v.seq, rv.type, rv.id, rv.version_id, rv.last_updated, rv.deleted, rv.body`

// hits runs a query for search results.
func (s *Store) hits(ctx context.Context, query string, args ...any) ([]Hit, error) {
	rs, err := s.drv.query(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer func() { _ = rs.Close() }()
	var out []Hit
	for rs.Next() {
		var h Hit
		var ms int64
		if err := rs.Scan(&h.Key.Sort, &h.Key.Seq, &h.Type, &h.ID, &h.VersionID, &ms, &h.Deleted, &h.Body); err != nil {
			return nil, err
		}
		h.LastUpdated = fromMillis(ms)
		out = append(out, h)
	}
	if err := rs.Err(); err != nil {
		return nil, err
	}
	return out, rs.Close()
}

// sqlBuilder collects bound arguments while a query's text is built.
type sqlBuilder struct {
	args []any
}

// arg binds v and returns its placeholder.
func (b *sqlBuilder) arg(v any) string {
	b.args = append(b.args, v)
	return fmt.Sprintf("$%d", len(b.args))
}

// list binds every value and returns the placeholders, comma-separated.
func (b *sqlBuilder) list(vals []string) string {
	ph := make([]string, len(vals))
	for i, v := range vals {
		ph[i] = b.arg(v)
	}
	return strings.Join(ph, ", ")
}

// where is the condition on search_version v for a request as of asof.
func (b *sqlBuilder) where(r SearchRequest, asof int64) string {
	return b.whereFrom(r, asof, false)
}

// whereFrom is where; with driven, the first condition in driving order is
// left out because the query walks its index (see drive).
func (b *sqlBuilder) whereFrom(r SearchRequest, asof int64, driven bool) string {
	parts := []string{b.current(asof)}
	if r.Query.Type != "" {
		parts = append(parts, "v.type = "+b.arg(r.Query.Type))
	}
	if r.Compartment != "" {
		parts = append(parts, "v.patient_id = "+b.arg(r.Compartment))
		if len(r.Types) > 0 {
			parts = append(parts, "v.type IN ("+b.list(r.Types)+")")
		}
	}
	for i, c := range byDrivingOrder(r.Query.Conds) {
		if driven && i == 0 {
			continue
		}
		parts = append(parts, b.cond(r.Query.Type, c, i == 0 && !driven))
	}
	if a := b.access(r.Access); a != "" {
		parts = append(parts, a)
	}
	return strings.Join(parts, " AND ")
}

// current selects the versions current as of asof, deletions excluded.
func (b *sqlBuilder) current(asof int64) string {
	p := b.arg(asof)
	return fmt.Sprintf("v.seq <= %s AND (v.until_seq IS NULL OR v.until_seq > %s) AND v.deleted = %s", p, p, b.arg(false))
}

// access limits v to what a may see (see Access).
func (b *sqlBuilder) access(a Access) string {
	switch {
	case a.All:
		return ""
	case len(a.Orgs) == 0:
		return "v.patient_id = ''"
	}
	// A consent holds unless a later revocation of the patient's, in any
	// of their episodes' documents, has taken effect: revoking in one
	// episode revokes the patient's consent, not just that episode's.
	now := b.arg(millis(a.Now))
	return fmt.Sprintf(`(v.patient_id = '' OR EXISTS (SELECT 1 FROM patient_access pa
		WHERE pa.patient_id = v.patient_id AND pa.org_id IN (%s)
		AND pa.sharing_from <= %s AND (pa.sharing_until IS NULL OR pa.sharing_until > %s)
		AND NOT EXISTS (SELECT 1 FROM patient_access px WHERE px.patient_id = pa.patient_id
			AND px.sharing_until <= %s AND px.sharing_until > pa.sharing_from)))`,
		b.list(a.Orgs), now, now, now)
}

// drivable reports whether a search sorted by seq (or _lastUpdated, which
// grows with seq) starts from one indexed value whose index rows are in seq
// order: a reference, or a token with its system (a code alone spans
// several systems, whose rows interleave).
func drivable(r SearchRequest) bool {
	if len(r.Query.Conds) == 0 || r.Compartment != "" {
		return false
	}
	c := byDrivingOrder(r.Query.Conds)[0]
	if c.Param == "_id" || c.Param == "_lastUpdated" || len(c.Any) != 1 {
		return false
	}
	return c.Kind == search.Reference || (c.Kind == search.Token && c.Any[0].HasSystem)
}

// drive returns the FROM clause that joins the driving condition c's index
// rows d to search_version v, and the condition on d. The index (param,
// ref, seq) or (param, code, system, seq) then yields the rows in seq
// order, so a page reads about as many rows as it returns. Index rows are
// unique per version (Prepare drops repeated values), so the join never
// repeats a version.
func (b *sqlBuilder) drive(typ string, c search.Cond) (from, cond string) {
	param := b.arg(typ + "." + c.Param)
	m := c.Any[0]
	if c.Kind == search.Reference {
		return "search_ref d JOIN search_version v ON v.seq = d.seq",
			fmt.Sprintf("d.param = %s AND d.ref = %s", param, b.arg(m.Ref))
	}
	return "search_token d JOIN search_version v ON v.seq = d.seq",
		fmt.Sprintf("d.param = %s AND d.code = %s AND d.system = %s", param, b.arg(m.Code), b.arg(m.System))
}

// byDrivingOrder puts the condition the database should start from first:
// _id, then references (a patient has few resources), tokens, dates.
func byDrivingOrder(conds []search.Cond) []search.Cond {
	rank := func(c search.Cond) int {
		switch {
		case c.Param == "_id":
			return 0
		case c.Param == "_lastUpdated":
			return 5
		case c.Kind == search.Reference:
			return 1
		case c.Kind == search.Token:
			return 2
		}
		return 3
	}
	out := slices.Clone(conds)
	slices.SortStableFunc(out, func(a, b search.Cond) int { return rank(a) - rank(b) })
	return out
}

// cond is the condition for one search parameter of typ. The driving
// condition selects seqs from its index (v.seq IN ...); the others probe
// their index per candidate (EXISTS ... seq = v.seq), so that a query never
// materialises a large value list such as every Observation with one code.
func (b *sqlBuilder) cond(typ string, c search.Cond, driving bool) string {
	var alts []string
	switch {
	case c.Param == "_id":
		for _, m := range c.Any {
			alts = append(alts, m.Code)
		}
		return "v.id IN (" + b.list(alts) + ")"
	case c.Param == "_lastUpdated":
		for _, m := range c.Any {
			alts = append(alts, b.dateCond(m, "v.last_updated", "v.last_updated + 1"))
		}
		return "(" + strings.Join(alts, " OR ") + ")"
	}
	param := b.arg(typ + "." + c.Param)
	var table, match string
	switch c.Kind {
	case search.Token:
		for _, m := range c.Any {
			if m.HasSystem {
				alts = append(alts, fmt.Sprintf("(x.code = %s AND x.system = %s)", b.arg(m.Code), b.arg(m.System)))
			} else {
				alts = append(alts, "x.code = "+b.arg(m.Code))
			}
		}
		table, match = "search_token", strings.Join(alts, " OR ")
	case search.Reference:
		for _, m := range c.Any {
			alts = append(alts, m.Ref)
		}
		table, match = "search_ref", "x.ref IN ("+b.list(alts)+")"
	default:
		for _, m := range c.Any {
			alts = append(alts, b.dateCond(m, "x.lo", "x.hi"))
		}
		table, match = "search_date", strings.Join(alts, " OR ")
	}
	if driving {
		return fmt.Sprintf("v.seq IN (SELECT x.seq FROM %s x WHERE x.param = %s AND (%s))", table, param, match)
	}
	return fmt.Sprintf("EXISTS (SELECT 1 FROM %s x WHERE x.seq = v.seq AND x.param = %s AND (%s))", table, param, match)
}

// dateCond compares the range [lo, hi) of an element with a date search
// value, as FHIR's prefixes define.
func (b *sqlBuilder) dateCond(m search.Match, lo, hi string) string {
	switch m.Prefix {
	case "gt":
		return fmt.Sprintf("%s > %s", hi, b.arg(m.Hi))
	case "ge":
		return fmt.Sprintf("(%s >= %s OR %s > %s)", lo, b.arg(m.Lo), hi, b.arg(m.Hi))
	case "lt":
		return fmt.Sprintf("%s < %s", lo, b.arg(m.Lo))
	case "le":
		return fmt.Sprintf("(%s < %s OR %s <= %s)", lo, b.arg(m.Lo), hi, b.arg(m.Hi))
	}
	return fmt.Sprintf("(%s >= %s AND %s <= %s)", lo, b.arg(m.Lo), hi, b.arg(m.Hi))
}
