package store

import (
	"context"
	"fmt"
	"strings"

	"github.com/kapgw/kapgw/internal/search"
)

// maxIncluded bounds the _include and _revinclude results of one page.
const maxIncluded = 1000

// includes returns the _include and _revinclude results of a page of hits,
// as of the page's seq and filtered by the request's access. Iterating
// includes run once more over everything found so far (one level).
func (s *Store) includes(ctx context.Context, r SearchRequest, asof int64, hits []Hit) ([]Version, error) {
	q := r.Query
	if len(hits) == 0 || (len(q.Include) == 0 && len(q.RevInclude) == 0) {
		return nil, nil
	}
	seen := make(map[string]bool, len(hits))
	var found []Hit
	for _, h := range hits {
		seen[h.Type+"/"+h.ID] = true
	}
	for round := range 2 {
		from := hits
		if round == 1 {
			from = append(hits[:len(hits):len(hits)], found...)
		}
		for _, inc := range q.Include {
			if inc.Iterate != (round == 1) && !(round == 0 && inc.Type == q.Type) {
				continue
			}
			more, err := s.forward(ctx, r.Access, asof, inc, from)
			if err != nil {
				return nil, err
			}
			found = addNew(found, seen, more)
		}
		for _, inc := range q.RevInclude {
			if inc.Iterate != (round == 1) {
				continue
			}
			more, err := s.reverse(ctx, r.Access, asof, inc, from)
			if err != nil {
				return nil, err
			}
			found = addNew(found, seen, more)
		}
	}
	out := make([]Version, len(found))
	for i, h := range found {
		out[i] = h.Version
	}
	return out, nil
}

// addNew appends the hits not seen yet.
func addNew(to []Hit, seen map[string]bool, hits []Hit) []Hit {
	for _, h := range hits {
		if k := h.Type + "/" + h.ID; !seen[k] && len(to) < maxIncluded {
			seen[k] = true
			to = append(to, h)
		}
	}
	return to
}

// forward returns the resources inc's reference parameter points to from
// the hits of inc.Type.
func (s *Store) forward(ctx context.Context, a Access, asof int64, inc search.Include, from []Hit) ([]Hit, error) {
	var seqs []any
	for _, h := range from {
		if h.Type == inc.Type {
			seqs = append(seqs, h.Key.Seq)
		}
	}
	refs, err := s.refsOf(ctx, inc.Type+"."+inc.Param, seqs)
	if err != nil || len(refs) == 0 {
		return nil, err
	}
	var b sqlBuilder
	where := b.current(asof)
	if acc := b.access(a); acc != "" {
		where += " AND " + acc
	}
	pairs := make([]string, len(refs))
	for i, r := range refs {
		typ, id, _ := strings.Cut(r, "/")
		pairs[i] = "(" + b.arg(typ) + ", " + b.arg(id) + ")"
	}
	q := fmt.Sprintf(`SELECT v.seq, %s FROM search_version v JOIN resource_version rv ON rv.seq = v.seq
		WHERE %s AND (v.type, v.id) IN (VALUES %s) ORDER BY v.seq`, hitColumns, where, strings.Join(pairs, ", "))
	hits, err := s.hits(ctx, q, b.args...)
	if err != nil {
		return nil, fmt.Errorf("include %s: %w", inc, err)
	}
	return hits, nil
}

// refsOf returns the distinct references param holds in the versions seqs.
func (s *Store) refsOf(ctx context.Context, param string, seqs []any) ([]string, error) {
	if len(seqs) == 0 {
		return nil, nil
	}
	var b sqlBuilder
	ph := make([]string, len(seqs))
	for i, seq := range seqs {
		ph[i] = b.arg(seq)
	}
	q := fmt.Sprintf(`SELECT DISTINCT ref FROM search_ref WHERE seq IN (%s) AND param = %s ORDER BY ref LIMIT %d`,
		strings.Join(ph, ", "), b.arg(param), maxIncluded)
	rs, err := s.drv.query(ctx, q, b.args...)
	if err != nil {
		return nil, fmt.Errorf("read references %s: %w", param, err)
	}
	defer func() { _ = rs.Close() }()
	var out []string
	for rs.Next() {
		var r string
		if err := rs.Scan(&r); err != nil {
			return nil, fmt.Errorf("read references %s: %w", param, err)
		}
		out = append(out, r)
	}
	return out, rs.Err()
}

// reverse returns the resources of inc.Type whose parameter points at one
// of the hits.
func (s *Store) reverse(ctx context.Context, a Access, asof int64, inc search.Include, from []Hit) ([]Hit, error) {
	var b sqlBuilder
	refs := make([]string, len(from))
	for i, h := range from {
		refs[i] = h.Type + "/" + h.ID
	}
	where := b.current(asof) + " AND v.type = " + b.arg(inc.Type)
	if acc := b.access(a); acc != "" {
		where += " AND " + acc
	}
	q := fmt.Sprintf(`SELECT v.seq, %s FROM search_version v JOIN resource_version rv ON rv.seq = v.seq
		WHERE %s AND v.seq IN (SELECT seq FROM search_ref WHERE param = %s AND ref IN (%s))
		ORDER BY v.seq LIMIT %d`, hitColumns, where, b.arg(inc.Type+"."+inc.Param), b.list(refs), maxIncluded)
	hits, err := s.hits(ctx, q, b.args...)
	if err != nil {
		return nil, fmt.Errorf("revinclude %s: %w", inc, err)
	}
	return hits, nil
}
