package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Pulled is one resource pulled from a partner EHR, already rewritten for
// us: Type and ID are ours (a deterministic id), PatientID is our patient,
// and Body carries our subject reference.
type Pulled struct {
	Resource
	// RemoteID is the partner's id for the resource.
	RemoteID string
}

// ProvenanceFunc builds the Provenance of one stored pull page from the
// entries of the resources it created or updated, recorded at recorded.
type ProvenanceFunc func(written []Entry, recorded time.Time) (Resource, error)

// PullPage is one page of one partner's search for one patient and type:
// what StorePulled writes in one transaction.
type PullPage struct {
	PartnerID string
	// PatientID is our patient the page was pulled for.
	PatientID string
	// Type is the resource type searched: with PartnerID and PatientID, the
	// cursor's key.
	Type      string
	Resources []Pulled
	// Cursor is the cursor after this page (the partner's lastUpdated of
	// its last resource); empty leaves the cursor where it is.
	Cursor string
	// Unmatched counts the page's resources whose subject was not the
	// patient: reported, not stored.
	Unmatched int
	// Provenance, when set, builds the page's Provenance; it is written
	// only when some resource was created or updated.
	Provenance ProvenanceFunc
}

// PullResult reports what StorePulled wrote.
type PullResult struct {
	// Entries has one entry per resource of the page, in its order.
	Entries []Entry
	// Provenance is the Provenance written, nil when nothing changed.
	Provenance *Entry
}

// StorePulled stores one pulled page in one transaction: each resource as
// a new version of our resource only when its content changed (so a
// re-pull of unchanged resources writes nothing), indexed like every other
// resource, marked as external; the page's Provenance; and the cursor,
// advanced with the resources so that a crash never skips a page.
func (s *Store) StorePulled(ctx context.Context, p PullPage) (PullResult, error) {
	var res PullResult
	err := s.write(ctx, fmt.Sprintf("store pulled %s from %s", p.Type, p.PartnerID), func(tx txn) error {
		var err error
		res, err = s.storePulled(ctx, tx, p)
		return err
	})
	return res, err
}

// storePulled does StorePulled's work inside tx.
func (s *Store) storePulled(ctx context.Context, tx txn, p PullPage) (PullResult, error) {
	c := EpisodeChange{Resources: make([]Resource, len(p.Resources))}
	for i, r := range p.Resources {
		if err := checkPulled(r, p.PatientID); err != nil {
			return PullResult{}, err
		}
		c.Resources[i] = r.Resource
	}
	if err := checkChange(EpisodeChange{Document: []byte("-"), Resources: c.Resources}); err != nil {
		return PullResult{}, err
	}
	entries, err := s.writeResources(ctx, tx, c)
	if err != nil {
		return PullResult{}, err
	}
	res := PullResult{Entries: entries}
	var batch []stmt
	for _, r := range p.Resources {
		batch = append(batch, stmt{"mark " + r.Type + "/" + r.ID + " external",
			s.dialect.insertIgnore(`INSERT INTO external_resource (type, id, partner_id, remote_id, patient_id) VALUES ($1, $2, $3, $4, $5)`),
			[]any{r.Type, r.ID, p.PartnerID, r.RemoteID, r.PatientID}})
	}
	// Only new versions count as pulled: the worker re-reads the
	// resources at its cursor's instant on every poll.
	written := changed(entries)
	batch = append(batch, s.cursorWrite(p, len(written)))
	if err := tx.execBatch(ctx, batch); err != nil {
		return PullResult{}, err
	}
	if len(written) == 0 || p.Provenance == nil {
		return res, nil
	}
	prov, err := p.Provenance(written, s.now().UTC())
	if err != nil {
		return PullResult{}, fmt.Errorf("build provenance: %w", err)
	}
	pe, err := s.writeResources(ctx, tx, EpisodeChange{Resources: []Resource{prov}})
	if err != nil {
		return PullResult{}, err
	}
	res.Provenance = &pe[0]
	return res, nil
}

// writeResources writes the resources of c whose content changed, and
// their index rows, through the path episodes take.
func (s *Store) writeResources(ctx context.Context, tx txn, c EpisodeChange) ([]Entry, error) {
	now := s.now().UTC().Truncate(time.Millisecond)
	entries, batch, err := s.resourceWrites(ctx, tx, c, now)
	if err != nil {
		return nil, err
	}
	if err := tx.execBatch(ctx, batch); err != nil {
		return nil, err
	}
	if err := s.writeIndex(ctx, tx, c, entries); err != nil {
		return nil, err
	}
	return entries, nil
}

// checkPulled rejects a pulled resource that does not belong to patientID.
func checkPulled(r Pulled, patientID string) error {
	switch {
	case patientID == "":
		return errors.New("pulled page: no patient")
	case r.PatientID != patientID:
		return fmt.Errorf("pulled %s/%s: belongs to another patient", r.Type, r.ID)
	case r.RemoteID == "":
		return fmt.Errorf("pulled %s/%s: no remote id", r.Type, r.ID)
	}
	return nil
}

// changed returns the entries that wrote a version.
func changed(entries []Entry) []Entry {
	var out []Entry
	for _, e := range entries {
		if e.Action != ActionUnchanged {
			out = append(out, e)
		}
	}
	return out
}

// cursorWrite returns the statement that advances (or creates) the cursor
// of p and adds its counts.
func (s *Store) cursorWrite(p PullPage, stored int) stmt {
	return stmt{"advance pull cursor of " + p.PartnerID + " " + p.Type,
		`INSERT INTO sync_pull_cursor (partner_id, patient_id, type, cursor, pulled, unmatched, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7)
		ON CONFLICT (partner_id, patient_id, type) DO UPDATE SET
		cursor = CASE WHEN excluded.cursor = '' THEN sync_pull_cursor.cursor ELSE excluded.cursor END,
		pulled = sync_pull_cursor.pulled + excluded.pulled,
		unmatched = sync_pull_cursor.unmatched + excluded.unmatched,
		updated_at = excluded.updated_at`,
		[]any{p.PartnerID, p.PatientID, p.Type, p.Cursor, stored, p.Unmatched, millis(s.now())}}
}

// ExternalResourcesTx returns the current, not deleted, resources pulled from partner EHRs for our patient, of the given types (all types when none), bodies as stored.
func (s *Store) ExternalResourcesTx(ctx context.Context, tx Tx, patientID string, types ...string) ([]Resource, error) {
	return externalResources(ctx, tx.querier(), patientID, types)
}

// ExternalResources is ExternalResourcesTx outside a transaction.
func (s *Store) ExternalResources(ctx context.Context, patientID string, types ...string) ([]Resource, error) {
	return externalResources(ctx, s.drv, patientID, types)
}

func externalResources(ctx context.Context, q querier, patientID string, types []string) ([]Resource, error) {
	args := []any{patientID, false}
	typeCond := ""
	if len(types) > 0 {
		ph := make([]string, len(types))
		for i, t := range types {
			args = append(args, t)
			ph[i] = fmt.Sprintf("$%d", len(args))
		}
		typeCond = " AND x.type IN (" + strings.Join(ph, ", ") + ")"
	}
	rs, err := q.query(ctx, `SELECT r.type, r.id, v.body FROM external_resource x
		JOIN resource r ON r.type = x.type AND r.id = x.id
		JOIN resource_version v ON v.type = r.type AND v.id = r.id AND v.version_id = r.version_id
		WHERE x.patient_id = $1 AND r.deleted = $2 AND r.version_id > 0`+typeCond+`
		ORDER BY r.type, r.id`, args...)
	if err != nil {
		return nil, fmt.Errorf("read external resources of patient %s: %w", patientID, err)
	}
	out, err := scanPatientResources(rs, patientID)
	if err != nil {
		return nil, fmt.Errorf("read external resources of patient %s: %w", patientID, err)
	}
	return out, nil
}

// jsonTypes decodes a JSON array of type names.
func jsonTypes(raw string) ([]string, error) {
	var out []string
	if err := json.Unmarshal([]byte(raw), &out); err != nil {
		return nil, fmt.Errorf("decode types: %w", err)
	}
	return out, nil
}
