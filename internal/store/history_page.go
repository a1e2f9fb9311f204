package store

import (
	"context"
	"fmt"
	"time"
)

// HistoryRequest asks for one page of the versions of a resource (ID set)
// or of every resource of a type, newest first.
type HistoryRequest struct {
	Type, ID string
	Since    time.Time // zero: from the beginning
	Count    int
	Access   Access
	// Page.After is the key of the last version of the previous page;
	// Backward is not supported for history.
	Page Page
}

// HistoryPage returns one page of history as of Page.AsOf, filtered by
// Access. An instance history with no visible version is ErrNotFound.
func (s *Store) HistoryPage(ctx context.Context, r HistoryRequest) (SearchResult, error) {
	res := SearchResult{AsOf: r.Page.AsOf, Total: -1}
	if res.AsOf == 0 {
		if err := s.drv.queryRow(ctx, `SELECT COALESCE(MAX(seq), 0) FROM search_version`).Scan(&res.AsOf); err != nil {
			return res, fmt.Errorf("history: read latest seq: %w", err)
		}
	}
	var b sqlBuilder
	where := "v.seq <= " + b.arg(res.AsOf) + " AND v.type = " + b.arg(r.Type)
	if r.ID != "" {
		where += " AND v.id = " + b.arg(r.ID)
	}
	if !r.Since.IsZero() {
		where += " AND v.last_updated >= " + b.arg(millis(r.Since))
	}
	if acc := b.access(r.Access); acc != "" {
		where += " AND " + acc
	}
	if k := r.Page.After; k != nil {
		where += " AND v.seq < " + b.arg(k.Seq)
	}
	q := fmt.Sprintf(`SELECT v.seq, %s FROM search_version v JOIN resource_version rv ON rv.seq = v.seq
		WHERE %s ORDER BY v.seq DESC LIMIT %s`, hitColumns, where, b.arg(r.Count+1))
	hits, err := s.hits(ctx, q, b.args...)
	if err != nil {
		return res, fmt.Errorf("history of %s: %w", r.Type, err)
	}
	if len(hits) > r.Count {
		hits, res.More = hits[:r.Count], true
	}
	res.Hits = hits
	if r.ID != "" && len(hits) == 0 && r.Page.After == nil && r.Since.IsZero() {
		return res, fmt.Errorf("history of %s/%s: %w", r.Type, r.ID, ErrNotFound)
	}
	return res, nil
}

// Visible reports whether a caller with access a may see resource typ/id:
// the FHIR API answers 404 for a resource that exists but is not visible,
// so that its existence does not leak.
func (s *Store) Visible(ctx context.Context, a Access, typ, id string) (bool, error) {
	if a.All {
		return true, nil
	}
	var b sqlBuilder
	where := "v.type = " + b.arg(typ) + " AND v.id = " + b.arg(id) + " AND v.until_seq IS NULL"
	if acc := b.access(a); acc != "" {
		where += " AND " + acc
	}
	var n int
	if err := s.drv.queryRow(ctx, `SELECT COUNT(*) FROM search_version v WHERE `+where, b.args...).Scan(&n); err != nil {
		return false, fmt.Errorf("check access to %s/%s: %w", typ, id, err)
	}
	return n > 0, nil
}
