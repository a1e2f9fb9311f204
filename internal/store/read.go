package store

import (
	"context"
	"fmt"
)

// versionColumns are the resource_version columns scanVersion reads.
const versionColumns = `v.type, v.id, v.version_id, v.last_updated, v.deleted, v.body`

// Episode returns the last accepted document of an episode, or ErrNotFound.
// The document is PHI.
func (s *Store) Episode(ctx context.Context, id string) ([]byte, error) {
	var doc []byte
	err := s.drv.queryRow(ctx, `SELECT document FROM episode WHERE id = $1 AND document IS NOT NULL`, id).Scan(&doc)
	if isNoRows(err) {
		return nil, fmt.Errorf("episode %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read episode %s: %w", id, err)
	}
	return doc, nil
}

// EpisodeResources returns the current version of every resource linked to
// the episode, ordered by type then id, or ErrNotFound if the episode has
// no accepted document.
func (s *Store) EpisodeResources(ctx context.Context, id string) ([]Version, error) {
	vs, err := s.versions(ctx, `SELECT `+versionColumns+`
		FROM episode_resource l
		JOIN resource r ON r.type = l.type AND r.id = l.id
		JOIN resource_version v ON v.type = r.type AND v.id = r.id AND v.version_id = r.version_id
		WHERE l.episode_id = $1
		ORDER BY v.type, v.id`, id)
	if err != nil {
		return nil, fmt.Errorf("read resources of episode %s: %w", id, err)
	}
	if len(vs) == 0 {
		if _, err := s.Episode(ctx, id); err != nil {
			return nil, err
		}
	}
	return vs, nil
}

// Read returns the current version of a resource: ErrNotFound if it never
// existed, ErrGone if it is deleted (then with the deletion's Version, whose
// VersionID a 410 response can carry).
func (s *Store) Read(ctx context.Context, typ, id string) (Version, error) {
	return s.version(ctx, typ, id, "", `SELECT `+versionColumns+`
		FROM resource r
		JOIN resource_version v ON v.type = r.type AND v.id = r.id AND v.version_id = r.version_id
		WHERE r.type = $1 AND r.id = $2`, typ, id)
}

// ReadVisible is Read for a caller with access a, in one query: a resource
// a may not see (Visible) is ErrNotFound, as if it did not exist, so a
// partner's read costs one round trip instead of a check and a read.
func (s *Store) ReadVisible(ctx context.Context, a Access, typ, id string) (Version, error) {
	if a.All {
		return s.Read(ctx, typ, id)
	}
	var b sqlBuilder
	t, i := b.arg(typ), b.arg(id)
	where := "v.type = r.type AND v.id = r.id AND v.until_seq IS NULL"
	if acc := b.access(a); acc != "" {
		where += " AND " + acc
	}
	// search_version is aliased v, as access expects; the version read is rv.
	return s.version(ctx, typ, id, "", `SELECT rv.type, rv.id, rv.version_id, rv.last_updated, rv.deleted, rv.body
		FROM resource r
		JOIN resource_version rv ON rv.type = r.type AND rv.id = r.id AND rv.version_id = r.version_id
		WHERE r.type = `+t+` AND r.id = `+i+` AND EXISTS (SELECT 1 FROM search_version v WHERE `+where+`)`, b.args...)
}

// VRead returns one version of a resource: ErrNotFound if there is no such
// version, ErrGone if that version is a deletion.
func (s *Store) VRead(ctx context.Context, typ, id string, versionID int64) (Version, error) {
	return s.version(ctx, typ, id, fmt.Sprintf(" version %d", versionID), `SELECT `+versionColumns+`
		FROM resource_version v
		WHERE v.type = $1 AND v.id = $2 AND v.version_id = $3`, typ, id, versionID)
}

// History returns every version of a resource, newest first, or
// ErrNotFound if it never existed.
func (s *Store) History(ctx context.Context, typ, id string) ([]Version, error) {
	vs, err := s.versions(ctx, `SELECT `+versionColumns+`
		FROM resource_version v
		WHERE v.type = $1 AND v.id = $2
		ORDER BY v.version_id DESC`, typ, id)
	if err != nil {
		return nil, fmt.Errorf("read history of %s/%s: %w", typ, id, err)
	}
	if len(vs) == 0 {
		return nil, fmt.Errorf("history of %s/%s: %w", typ, id, ErrNotFound)
	}
	return vs, nil
}

// version runs a query for at most one version of typ/id (what describes
// which), mapping no row to ErrNotFound and a deletion to ErrGone.
func (s *Store) version(ctx context.Context, typ, id, what, query string, args ...any) (Version, error) {
	v, err := scanVersion(s.drv.queryRow(ctx, query, args...))
	switch {
	case isNoRows(err):
		return Version{}, fmt.Errorf("%s/%s%s: %w", typ, id, what, ErrNotFound)
	case err != nil:
		return Version{}, fmt.Errorf("read %s/%s%s: %w", typ, id, what, err)
	case v.Deleted:
		return v, fmt.Errorf("%s/%s%s: %w", typ, id, what, ErrGone)
	}
	return v, nil
}

// versions runs a query for any number of versions.
func (s *Store) versions(ctx context.Context, query string, args ...any) ([]Version, error) {
	rs, err := s.drv.query(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	var vs []Version
	for rs.Next() {
		v, err := scanVersion(rs)
		if err != nil {
			_ = rs.Close()
			return nil, err
		}
		vs = append(vs, v)
	}
	if err := rs.Err(); err != nil {
		_ = rs.Close()
		return nil, err
	}
	if err := rs.Close(); err != nil {
		return nil, err
	}
	return vs, nil
}

// scanVersion reads the versionColumns of one row.
func scanVersion(row scanner) (Version, error) {
	var v Version
	var ms int64
	if err := row.Scan(&v.Type, &v.ID, &v.VersionID, &ms, &v.Deleted, &v.Body); err != nil {
		return Version{}, err
	}
	v.LastUpdated = fromMillis(ms)
	return v, nil
}
