package store

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/kapgw/kapgw/internal/search"
)

// noSortDate is the sort_date of a version without a date: after every
// real date.
const noSortDate = math.MaxInt64 / 2

// stampTime takes the seq lock (on PostgreSQL; SQLite's single writer holds
// it already) and returns the lastUpdated of the versions this transaction
// writes: now, but strictly later than every lastUpdated already committed.
// With seq assigned under the same lock, lastUpdated then grows with commit
// order, so a poller asking for _lastUpdated=gt{the latest it has seen}
// cannot miss a transaction that committed after it looked, whatever the
// clocks of the writers said.
func (s *Store) stampTime(ctx context.Context, tx txn, now time.Time) (time.Time, error) {
	if s.dialect.lockSeq != "" {
		if err := tx.exec(ctx, s.dialect.lockSeq); err != nil {
			return time.Time{}, fmt.Errorf("lock seq: %w", err)
		}
	}
	var last int64
	if err := tx.queryRow(ctx, `SELECT COALESCE(MAX(last_updated), 0) FROM resource_version`).Scan(&last); err != nil {
		return time.Time{}, fmt.Errorf("read last update time: %w", err)
	}
	if millis(now) <= last {
		return fromMillis(last + 1), nil
	}
	return now, nil
}

// indexWrites returns the statements that index the versions written for
// entries (those not unchanged) and close the previous version's rows. It
// runs after the versions are inserted, in the same transaction.
func (s *Store) indexWrites(ctx context.Context, tx txn, reg *search.Registry, c EpisodeChange, entries []Entry) ([]stmt, error) {
	var keys []key
	byKey := make(map[key]Resource)
	hasPrev := make(map[key]bool)
	for i, e := range entries {
		if e.Action != ActionUnchanged {
			keys = append(keys, key{e.Type, e.ID})
			byKey[key{e.Type, e.ID}] = c.Resources[i]
			hasPrev[key{e.Type, e.ID}] = e.VersionID > 1
		}
	}
	if len(keys) == 0 {
		return nil, nil
	}
	slices.SortFunc(keys, func(a, b key) int { return strings.Compare(a.typ+"/"+a.id, b.typ+"/"+b.id) })
	seqs, err := s.currentSeqs(ctx, tx, keys)
	if err != nil {
		return nil, err
	}
	var ix indexRows
	if s.dialect.name == "sqlite" {
		ix.insert = "INSERT OR FAIL INTO"
	}
	for _, k := range keys {
		seq, ok := seqs[k]
		if !ok {
			return nil, errors.New("index: a written version is missing")
		}
		if hasPrev[k] {
			ix.add(reg, seq, byKey[k])
		} else {
			ix.index(reg, seq, byKey[k])
		}
	}
	return ix.stmts(), nil
}

// currentSeqs reads the seq and lastUpdated of the current version of keys.
func (s *Store) currentSeqs(ctx context.Context, q querier, keys []key) (map[key]versionRef, error) {
	out := make(map[key]versionRef, len(keys))
	for part := range chunks(keys) {
		var values strings.Builder
		for i := range part {
			if i > 0 {
				values.WriteString(", ")
			}
			fmt.Fprintf(&values, "($%d, $%d)", 2*i+1, 2*i+2)
		}
		rs, err := q.query(ctx, `SELECT type, id, seq, last_updated FROM resource WHERE (type, id) IN (VALUES `+values.String()+`)`, keyArgs(part)...)
		if err != nil {
			return nil, fmt.Errorf("index: read seqs: %w", err)
		}
		for rs.Next() {
			var k key
			var v versionRef
			if err := rs.Scan(&k.typ, &k.id, &v.seq, &v.lastUpdated); err != nil {
				_ = rs.Close()
				return nil, fmt.Errorf("index: scan seq: %w", err)
			}
			out[k] = v
		}
		if err := errors.Join(rs.Err(), rs.Close()); err != nil {
			return nil, fmt.Errorf("index: read seqs: %w", err)
		}
	}
	return out, nil
}

// versionRef is where a version sits in commit order.
type versionRef struct {
	seq, lastUpdated int64
}

// indexRows collects the rows of the index tables for a set of versions.
type indexRows struct {
	// insert begins the insert statements: "INSERT INTO" when empty. On
	// SQLite it is "INSERT OR FAIL INTO": a failing multi-row insert then
	// stops where it is instead of undoing its own rows, so SQLite keeps no
	// statement journal for it (8% of an episode's write time went to
	// copying pages into one). The error rolls back the whole transaction
	// in any case.
	insert   string
	closeOld []stmt
	versions [][]any
	tokens   [][]any
	refs     [][]any
	dates    [][]any
}

// add indexes resource r, written as the version at v, and closes the
// index rows of its previous version.
func (ix *indexRows) add(reg *search.Registry, v versionRef, r Resource) {
	ix.index(reg, v, r)
	ix.closeOld = append(ix.closeOld, stmt{"index: close previous version of " + r.Type + "/" + r.ID,
		`UPDATE search_version SET until_seq = $1 WHERE type = $2 AND id = $3 AND until_seq IS NULL AND seq < $1`,
		[]any{v.seq, r.Type, r.ID}})
}

// index indexes resource r, written as the version at v, with nothing to
// close: a created resource has no previous version, so most of a new
// episode's writes skip add's update.
func (ix *indexRows) index(reg *search.Registry, v versionRef, r Resource) {
	p := r.prepared
	if p == nil {
		p = newPrepared(reg, r)
	}
	for _, val := range p.values {
		switch val.Kind {
		case search.Token:
			ix.tokens = append(ix.tokens, []any{v.seq, val.Param, val.System, val.Code})
		case search.Reference:
			ix.refs = append(ix.refs, []any{v.seq, val.Param, val.Ref})
		case search.Date:
			ix.dates = append(ix.dates, []any{v.seq, val.Param, val.Lo, val.Hi})
		}
	}
	ix.versions = append(ix.versions, []any{v.seq, r.Type, r.ID, r.PatientID, v.lastUpdated, p.sortDate, false})
}

// stmts returns the statements that write the collected rows.
func (ix *indexRows) stmts() []stmt {
	insert := cmp.Or(ix.insert, "INSERT INTO")
	out := slices.Clone(ix.closeOld)
	out = append(out, insertRows("index versions", insert+` search_version
		(seq, type, id, patient_id, last_updated, sort_date, deleted) VALUES `, ix.versions)...)
	out = append(out, insertRows("index tokens", insert+` search_token (seq, param, system, code) VALUES `, ix.tokens)...)
	out = append(out, insertRows("index references", insert+` search_ref (seq, param, ref) VALUES `, ix.refs)...)
	return append(out, insertRows("index dates", insert+` search_date (seq, param, lo, hi) VALUES `, ix.dates)...)
}

// insertRows writes rows as multi-row inserts of the fixed sizes chunks
// cuts them into.
func insertRows(what, prefix string, rows [][]any) []stmt {
	var out []stmt
	for part := range chunks(rows) {
		var sb strings.Builder
		sb.WriteString(prefix)
		var args []any
		for i, row := range part {
			if i > 0 {
				sb.WriteString(", ")
			}
			sb.WriteByte('(')
			for j := range row {
				if j > 0 {
					sb.WriteString(", ")
				}
				fmt.Fprintf(&sb, "$%d", len(args)+j+1)
			}
			sb.WriteByte(')')
			args = append(args, row...)
		}
		out = append(out, stmt{what, sb.String(), args})
	}
	return out
}

// writeIndex indexes the versions the transaction wrote for entries.
func (s *Store) writeIndex(ctx context.Context, tx txn, c EpisodeChange, entries []Entry) error {
	batch, err := s.indexWrites(ctx, tx, s.reg, c, entries)
	if err != nil {
		return err
	}
	return tx.execBatch(ctx, batch)
}
