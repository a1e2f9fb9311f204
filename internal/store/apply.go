package store

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/kapgw/kapgw/fhir/fhirjson"
)

// BuildFunc turns the previously accepted document of an episode (nil and
// "" if none) into the change to write. It runs inside the transaction with
// the episode locked; an error rolls everything back.
type BuildFunc func(prevDoc []byte, prevDigest string) (EpisodeChange, error)

// AfterWriteFunc runs in the episode's transaction after the change is
// written and before commit, so that what it writes (River jobs) commits or
// rolls back with the episode. An error rolls everything back. It is not
// called when the document was unchanged and nothing was written.
type AfterWriteFunc func(ctx context.Context, tx Tx, res ApplyResult) error

// ApplyEpisode writes the change build returns for one episode in one
// transaction, with the episode locked so that concurrent documents for the
// same episode apply one after the other. A resource gets a new version
// only when the SHA-256 of its Body differs from its current version's; if
// change.Digest equals the stored digest nothing at all is written and
// every entry is ActionUnchanged.
func (s *Store) ApplyEpisode(ctx context.Context, episodeID string, build func(prevDoc []byte, prevDigest string) (EpisodeChange, error)) (ApplyResult, error) {
	return s.ApplyEpisodeTx(ctx, episodeID, build, nil)
}

// ApplyEpisodeTx is ApplyEpisode with afterWrite (which may be nil) run in
// the same transaction: the seam through which jobs are inserted atomically
// with the episode.
func (s *Store) ApplyEpisodeTx(ctx context.Context, episodeID string, build BuildFunc, afterWrite AfterWriteFunc) (ApplyResult, error) {
	tx, err := s.drv.begin(ctx)
	if err != nil {
		return ApplyResult{}, fmt.Errorf("apply episode %s: begin: %w", episodeID, err)
	}
	defer func() { _ = tx.rollback(context.WithoutCancel(ctx)) }()
	res, err := s.apply(ctx, tx, episodeID, build, afterWrite)
	if err != nil {
		return ApplyResult{}, fmt.Errorf("apply episode %s: %w", episodeID, err)
	}
	if err := tx.commit(ctx); err != nil {
		return ApplyResult{}, fmt.Errorf("apply episode %s: commit: %w", episodeID, err)
	}
	return res, nil
}

// apply does ApplyEpisodeTx's work inside tx.
func (s *Store) apply(ctx context.Context, tx txn, episodeID string, build BuildFunc, afterWrite AfterWriteFunc) (ApplyResult, error) {
	prevDoc, prevDigest, err := s.lockEpisode(ctx, tx, episodeID)
	if err != nil {
		return ApplyResult{}, err
	}
	change, err := build(prevDoc, prevDigest)
	if err != nil {
		return ApplyResult{}, fmt.Errorf("build: %w", err)
	}
	if err := checkChange(change); err != nil {
		return ApplyResult{}, err
	}
	if prevDoc != nil && change.Digest == prevDigest {
		entries, err := currentEntries(ctx, tx, change.Resources)
		return ApplyResult{Entries: entries}, err
	}
	now := s.now().UTC().Truncate(time.Millisecond)
	entries, err := s.writeResources(ctx, tx, change, now)
	if err != nil {
		return ApplyResult{}, err
	}
	if err := linkResources(ctx, tx, episodeID, change.Resources); err != nil {
		return ApplyResult{}, err
	}
	err = tx.exec(ctx, `UPDATE episode SET document = $2, digest = $3, accepted_at = $4 WHERE id = $1`,
		episodeID, change.Document, change.Digest, millis(now))
	if err != nil {
		return ApplyResult{}, fmt.Errorf("save document: %w", err)
	}
	res := ApplyResult{Created: prevDoc == nil, Entries: entries}
	if afterWrite != nil {
		if err := afterWrite(ctx, tx.public(), res); err != nil {
			return ApplyResult{}, fmt.Errorf("after write: %w", err)
		}
	}
	return res, nil
}

// lockEpisode locks the episode row, creating it (with no document) if
// absent, and returns the last accepted document and digest.
func (s *Store) lockEpisode(ctx context.Context, tx txn, id string) ([]byte, string, error) {
	var doc []byte
	var digest string
	q := `SELECT document, digest FROM episode WHERE id = $1` + s.dialect.forUpdate
	err := tx.queryRow(ctx, q, id).Scan(&doc, &digest)
	if err == nil || !isNoRows(err) {
		return doc, digest, wrapErr("lock episode", err)
	}
	// A concurrent first document inserts the same row: ON CONFLICT waits
	// for it to commit, and the SELECT below then locks its row.
	if err := tx.exec(ctx, `INSERT INTO episode (id) VALUES ($1) ON CONFLICT DO NOTHING`, id); err != nil {
		return nil, "", fmt.Errorf("create episode row: %w", err)
	}
	err = tx.queryRow(ctx, q, id).Scan(&doc, &digest)
	return doc, digest, wrapErr("lock episode", err)
}

// checkChange rejects changes the store cannot write consistently.
func checkChange(c EpisodeChange) error {
	if len(c.Document) == 0 {
		return errors.New("empty document")
	}
	seen := make(map[string]bool, len(c.Resources))
	for _, r := range c.Resources {
		key := r.Type + "/" + r.ID
		switch {
		case r.Type == "" || r.ID == "":
			return fmt.Errorf("resource %q: missing type or id", key)
		case seen[key]:
			return fmt.Errorf("resource %s: listed twice", key)
		case !json.Valid(r.Body):
			return fmt.Errorf("resource %s: body is not JSON", key)
		}
		seen[key] = true
	}
	return nil
}

// current is the locked current state of one resource; versionID 0 means
// it has no version yet.
type current struct {
	versionID int64
	hash      string
	deleted   bool
}

// pending is a version about to be written.
type pending struct {
	res  Resource
	vid  int64
	hash string
}

// writeResources locks every resource in (type, id) order, so that
// transactions sharing resources cannot deadlock, and writes a version of
// each whose content changed, stamped with now.
func (s *Store) writeResources(ctx context.Context, tx txn, c EpisodeChange, now time.Time) ([]Entry, error) {
	order := make([]int, len(c.Resources))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int {
		ra, rb := c.Resources[a], c.Resources[b]
		return cmp.Or(cmp.Compare(ra.Type, rb.Type), cmp.Compare(ra.ID, rb.ID))
	})
	entries := make([]Entry, len(c.Resources))
	var todo []pending
	for _, i := range order {
		r := c.Resources[i]
		cur, err := s.lockResource(ctx, tx, r.Type, r.ID)
		if err != nil {
			return nil, err
		}
		sum := sha256.Sum256(r.Body)
		hash := hex.EncodeToString(sum[:])
		if cur.versionID > 0 && cur.hash == hash && !cur.deleted {
			entries[i] = Entry{Type: r.Type, ID: r.ID, VersionID: cur.versionID, Action: ActionUnchanged}
			continue
		}
		entries[i] = Entry{Type: r.Type, ID: r.ID, VersionID: cur.versionID + 1, Action: action(cur, c.Removed[r.Type+"/"+r.ID])}
		todo = append(todo, pending{res: r, vid: cur.versionID + 1, hash: hash})
	}
	if len(todo) > 0 && s.dialect.lockSeq != "" {
		if err := tx.exec(ctx, s.dialect.lockSeq); err != nil {
			return nil, fmt.Errorf("lock seq: %w", err)
		}
	}
	for _, p := range todo {
		if err := insertVersion(ctx, tx, p, now); err != nil {
			return nil, err
		}
	}
	return entries, nil
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

// lockResource locks the resource's current row, creating a placeholder
// (version 0) if the resource is new so there is a row to lock. Two
// transactions creating the same resource serialise on the placeholder's
// primary key.
func (s *Store) lockResource(ctx context.Context, tx txn, typ, id string) (current, error) {
	q := `SELECT version_id, content_hash, deleted FROM resource WHERE type = $1 AND id = $2` + s.dialect.forUpdate
	var c current
	err := tx.queryRow(ctx, q, typ, id).Scan(&c.versionID, &c.hash, &c.deleted)
	if err == nil || !isNoRows(err) {
		return c, wrapErr("lock resource "+typ+"/"+id, err)
	}
	err = tx.exec(ctx, `INSERT INTO resource (type, id, version_id, seq, last_updated, content_hash)
		VALUES ($1, $2, 0, 0, 0, '') ON CONFLICT DO NOTHING`, typ, id)
	if err != nil {
		return c, fmt.Errorf("create resource row %s/%s: %w", typ, id, err)
	}
	err = tx.queryRow(ctx, q, typ, id).Scan(&c.versionID, &c.hash, &c.deleted)
	return c, wrapErr("lock resource "+typ+"/"+id, err)
}

// insertVersion stamps and stores one version and makes it current.
func insertVersion(ctx context.Context, tx txn, p pending, now time.Time) error {
	r := p.res
	body, err := fhirjson.WithMeta(r.Body, strconv.FormatInt(p.vid, 10), now)
	if err != nil {
		return fmt.Errorf("stamp %s/%s: %w", r.Type, r.ID, err)
	}
	var seq int64
	err = tx.queryRow(ctx, `INSERT INTO resource_version
		(type, id, version_id, last_updated, deleted, patient_id, content_hash, body)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING seq`,
		r.Type, r.ID, p.vid, millis(now), false, r.PatientID, p.hash, body).Scan(&seq)
	if err != nil {
		return fmt.Errorf("insert %s/%s version %d: %w", r.Type, r.ID, p.vid, err)
	}
	err = tx.exec(ctx, `UPDATE resource SET version_id = $3, seq = $4, last_updated = $5, deleted = $6,
		patient_id = $7, content_hash = $8 WHERE type = $1 AND id = $2`,
		r.Type, r.ID, p.vid, seq, millis(now), false, r.PatientID, p.hash)
	if err != nil {
		return fmt.Errorf("update current %s/%s: %w", r.Type, r.ID, err)
	}
	return nil
}

// linkResources records that the episode's resources belong to it.
func linkResources(ctx context.Context, tx txn, episodeID string, res []Resource) error {
	linked, err := tx.query(ctx, `SELECT type, id FROM episode_resource WHERE episode_id = $1`, episodeID)
	if err != nil {
		return fmt.Errorf("list links: %w", err)
	}
	have := make(map[[2]string]bool)
	for linked.Next() {
		var k [2]string
		if err := linked.Scan(&k[0], &k[1]); err != nil {
			_ = linked.Close()
			return fmt.Errorf("scan link: %w", err)
		}
		have[k] = true
	}
	if err := errors.Join(linked.Err(), linked.Close()); err != nil {
		return fmt.Errorf("list links: %w", err)
	}
	for _, r := range res {
		if have[[2]string{r.Type, r.ID}] {
			continue
		}
		err := tx.exec(ctx, `INSERT INTO episode_resource (episode_id, type, id) VALUES ($1, $2, $3)`, episodeID, r.Type, r.ID)
		if err != nil {
			return fmt.Errorf("link %s/%s: %w", r.Type, r.ID, err)
		}
	}
	return nil
}

// currentEntries reports every resource as unchanged at its current
// version (0 if it was never written).
func currentEntries(ctx context.Context, q querier, res []Resource) ([]Entry, error) {
	entries := make([]Entry, len(res))
	for i, r := range res {
		var vid int64
		err := q.queryRow(ctx, `SELECT version_id FROM resource WHERE type = $1 AND id = $2`, r.Type, r.ID).Scan(&vid)
		if err != nil && !isNoRows(err) {
			return nil, fmt.Errorf("read version of %s/%s: %w", r.Type, r.ID, err)
		}
		entries[i] = Entry{Type: r.Type, ID: r.ID, VersionID: vid, Action: ActionUnchanged}
	}
	return entries, nil
}

// wrapErr wraps a non-nil err with what was being done.
func wrapErr(what string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: %w", what, err)
}
