package store

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/kapgw/kapgw/fhir/fhirjson"
)

// key is a resource's type and id.
type key struct{ typ, id string }

// current is the locked current state of one resource; versionID 0 means
// it has no version yet.
type current struct {
	versionID int64
	hash      string
	deleted   bool
}

// stmt is one write, sent with others in one round trip where the driver
// can batch.
type stmt struct {
	what string // context for its error
	sql  string
	args []any
}

// resourceWrites locks every resource of c and returns the entries and the
// statements that write a version, stamped with now, of each resource whose
// content changed.
func (s *Store) resourceWrites(ctx context.Context, tx txn, c EpisodeChange, now time.Time) ([]Entry, []stmt, error) {
	cur, err := s.lockResources(ctx, tx, sortedKeys(c.Resources))
	if err != nil {
		return nil, nil, err
	}
	if now, err = s.stampTime(ctx, tx, now); err != nil {
		return nil, nil, err
	}
	entries := make([]Entry, len(c.Resources))
	var batch []stmt
	for i, r := range c.Resources {
		cu := cur[key{r.Type, r.ID}]
		hash := s.prepare(&c.Resources[i]).hash
		if cu.versionID > 0 && cu.hash == hash && !cu.deleted {
			entries[i] = Entry{Type: r.Type, ID: r.ID, VersionID: cu.versionID, Action: ActionUnchanged}
			continue
		}
		vid := cu.versionID + 1
		entries[i] = Entry{Type: r.Type, ID: r.ID, VersionID: vid, Action: action(cu, c.Removed[r.Type+"/"+r.ID])}
		sts, err := versionWrites(r, vid, hash, now)
		if err != nil {
			return nil, nil, err
		}
		batch = append(batch, sts...)
	}
	// stampTime took the seq lock (on PostgreSQL) before these versions.
	return entries, batch, nil
}

// action names what a new version of a resource in state cur is.
func action(cur current, removed bool) Action {
	switch {
	case removed:
		return ActionRemoved
	case cur.versionID == 0:
		return ActionCreated
	default:
		return ActionUpdated
	}
}

// sortedKeys returns the keys of rs in byte order, the order every
// transaction locks resources in so that none deadlock.
func sortedKeys(rs []Resource) []key {
	keys := make([]key, len(rs))
	for i, r := range rs {
		keys[i] = key{r.Type, r.ID}
	}
	slices.SortFunc(keys, func(a, b key) int {
		return cmp.Or(cmp.Compare(a.typ, b.typ), cmp.Compare(a.id, b.id))
	})
	return keys
}

// lockResources locks the current rows of keys (sorted). It first inserts
// a placeholder row (version 0) for every new resource, so there is a row
// to lock; a transaction creating the same resource concurrently waits
// here until the first commits. Both steps go through keys in the same
// order in every transaction, so concurrent episodes sharing resources
// cannot deadlock.
func (s *Store) lockResources(ctx context.Context, tx txn, keys []key) (map[key]current, error) {
	for part := range chunks(keys) {
		var values strings.Builder
		for i := range part {
			if i > 0 {
				values.WriteString(", ")
			}
			fmt.Fprintf(&values, "($%d, $%d, 0, 0, 0, '')", 2*i+1, 2*i+2)
		}
		err := tx.exec(ctx, s.dialect.insertIgnore(`INSERT INTO resource (type, id, version_id, seq, last_updated, content_hash) VALUES `+
			values.String()), keyArgs(part)...)
		if err != nil {
			return nil, fmt.Errorf("create resource rows: %w", err)
		}
	}
	cur, err := s.selectCurrent(ctx, tx, keys, s.dialect.forUpdate)
	if err != nil {
		return nil, err
	}
	if len(cur) != len(keys) {
		return nil, errors.New("lock resources: a resource row is missing")
	}
	return cur, nil
}

// selectCurrent reads (and with forUpdate, locks in key order) the current
// rows of keys. Absent resources are absent from the map.
func (s *Store) selectCurrent(ctx context.Context, q querier, keys []key, forUpdate string) (map[key]current, error) {
	cur := make(map[key]current, len(keys))
	for part := range chunks(keys) {
		var values strings.Builder
		for i := range part {
			if i > 0 {
				values.WriteString(", ")
			}
			fmt.Fprintf(&values, "($%d, $%d)", 2*i+1, 2*i+2)
		}
		rs, err := q.query(ctx, `SELECT type, id, version_id, content_hash, deleted FROM resource
			WHERE (type, id) IN (VALUES `+values.String()+`) ORDER BY `+s.dialect.byteOrder+forUpdate, keyArgs(part)...)
		if err != nil {
			return nil, fmt.Errorf("read resource rows: %w", err)
		}
		for rs.Next() {
			var k key
			var c current
			if err := rs.Scan(&k.typ, &k.id, &c.versionID, &c.hash, &c.deleted); err != nil {
				_ = rs.Close()
				return nil, fmt.Errorf("scan resource row: %w", err)
			}
			cur[k] = c
		}
		if err := errors.Join(rs.Err(), rs.Close()); err != nil {
			return nil, fmt.Errorf("read resource rows: %w", err)
		}
	}
	return cur, nil
}

// keyArgs flattens keys into query arguments: type, id, type, id, ...
func keyArgs(keys []key) []any {
	args := make([]any, 0, 2*len(keys))
	for _, k := range keys {
		args = append(args, k.typ, k.id)
	}
	return args
}

// versionWrites stamps r as version vid and returns the statements that
// store it and make it current.
func versionWrites(r Resource, vid int64, hash string, now time.Time) ([]stmt, error) {
	body, err := fhirjson.WithMeta(r.Body, strconv.FormatInt(vid, 10), now)
	if err != nil {
		return nil, fmt.Errorf("stamp %s/%s: %w", r.Type, r.ID, err)
	}
	what := fmt.Sprintf("write %s/%s version %d", r.Type, r.ID, vid)
	return []stmt{
		{what, `INSERT INTO resource_version
			(type, id, version_id, last_updated, deleted, patient_id, content_hash, body)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
			[]any{r.Type, r.ID, vid, millis(now), false, r.PatientID, hash, body}},
		{what, `UPDATE resource SET version_id = $3, last_updated = $4, deleted = $5, patient_id = $6,
			content_hash = $7, seq = (SELECT seq FROM resource_version WHERE type = $1 AND id = $2 AND version_id = $3)
			WHERE type = $1 AND id = $2`,
			[]any{r.Type, r.ID, vid, millis(now), false, r.PatientID, hash}},
	}, nil
}

// linkWrites returns the statements that link the episode to those of its
// resources not linked yet.
func linkWrites(ctx context.Context, tx txn, episodeID string, res []Resource) ([]stmt, error) {
	linked, err := tx.query(ctx, `SELECT type, id FROM episode_resource WHERE episode_id = $1`, episodeID)
	if err != nil {
		return nil, fmt.Errorf("list links: %w", err)
	}
	have := make(map[key]bool)
	for linked.Next() {
		var k key
		if err := linked.Scan(&k.typ, &k.id); err != nil {
			_ = linked.Close()
			return nil, fmt.Errorf("scan link: %w", err)
		}
		have[k] = true
	}
	if err := errors.Join(linked.Err(), linked.Close()); err != nil {
		return nil, fmt.Errorf("list links: %w", err)
	}
	var batch []stmt
	for _, r := range res {
		if have[key{r.Type, r.ID}] {
			continue
		}
		batch = append(batch, stmt{"link " + r.Type + "/" + r.ID,
			`INSERT INTO episode_resource (episode_id, type, id) VALUES ($1, $2, $3)`,
			[]any{episodeID, r.Type, r.ID}})
	}
	return batch, nil
}

// insertIgnore makes insert (an INSERT ... VALUES) skip rows whose key
// exists. SQLite's INSERT OR IGNORE does so without the statement journal
// that ON CONFLICT DO NOTHING needs for a multi-row insert; the rows it
// writes always have every column, so it ignores nothing else.
func (d dialect) insertIgnore(insert string) string {
	if d.name == "sqlite" {
		return strings.Replace(insert, "INSERT INTO", "INSERT OR IGNORE INTO", 1)
	}
	return insert + ` ON CONFLICT DO NOTHING`
}
