package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"
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
//
// On SQLite the episode is queued for the committer (groupcommit.go), which
// may write it in one transaction with other episodes queued behind the
// writer: its change is still atomic (an episode that fails makes the batch
// roll back and run again without it), seq and lastUpdated still grow in
// commit order, and it is reported only once committed. build and
// afterWrite may therefore run more than once and must have no effect
// outside the transaction; hooks must not end the transaction Tx.SQL()
// returns.
func (s *Store) ApplyEpisodeTx(ctx context.Context, episodeID string, build BuildFunc, afterWrite AfterWriteFunc) (ApplyResult, error) {
	if s.commits != nil {
		return s.commits.apply(ctx, episodeID, build, afterWrite)
	}
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
		entries, err := s.currentEntries(ctx, tx, change.Resources)
		return ApplyResult{Entries: entries}, err
	}
	now := s.now().UTC().Truncate(time.Millisecond)
	entries, batch, err := s.resourceWrites(ctx, tx, change, now)
	if err != nil {
		return ApplyResult{}, err
	}
	links, err := linkWrites(ctx, tx, episodeID, change.Resources)
	if err != nil {
		return ApplyResult{}, err
	}
	batch = append(batch, links...)
	batch = append(batch, accessWrites(episodeID, change.Access)...)
	batch = append(batch, stmt{"save document",
		`UPDATE episode SET document = $2, digest = $3, accepted_at = $4 WHERE id = $1`,
		[]any{episodeID, change.Document, change.Digest, millis(now)}})
	if err := tx.execBatch(ctx, batch); err != nil {
		return ApplyResult{}, err
	}
	if err := s.writeIndex(ctx, tx, change, entries); err != nil {
		return ApplyResult{}, err
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
		k := r.Type + "/" + r.ID
		switch {
		case r.Type == "" || r.ID == "":
			return fmt.Errorf("resource %q: missing type or id", k)
		case seen[k]:
			return fmt.Errorf("resource %s: listed twice", k)
		case !json.Valid(r.Body):
			return fmt.Errorf("resource %s: body is not JSON", k)
		}
		seen[k] = true
	}
	return nil
}

// currentEntries reports every resource as unchanged at its current
// version (0 if it was never written).
func (s *Store) currentEntries(ctx context.Context, tx txn, res []Resource) ([]Entry, error) {
	cur, err := s.selectCurrent(ctx, tx, sortedKeys(res), "")
	if err != nil {
		return nil, err
	}
	entries := make([]Entry, len(res))
	for i, r := range res {
		entries[i] = Entry{Type: r.Type, ID: r.ID, VersionID: cur[key{r.Type, r.ID}].versionID, Action: ActionUnchanged}
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
