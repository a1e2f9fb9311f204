// Package intake accepts KAP episode documents: it validates them, maps them
// to FHIR with the pure mappers, and stores every resource, versioned, in one
// transaction. It knows nothing of HTTP; fhir/ exposes it.
package intake

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/kapgw/kapgw/fhir/fhirjson"
	"github.com/kapgw/kapgw/internal/kap"
	"github.com/kapgw/kapgw/internal/store"
	"github.com/kapgw/kapgw/mappers"
	"github.com/kapgw/kapgw/pharmacy"
)

// Store is what intake needs of the resource store.
type Store interface {
	ApplyEpisode(ctx context.Context, episodeID string, build func(prevDoc []byte, prevDigest string) (store.EpisodeChange, error)) (store.ApplyResult, error)
	ApplyEpisodeTx(ctx context.Context, episodeID string, build store.BuildFunc, afterWrite store.AfterWriteFunc) (store.ApplyResult, error)
	Episode(ctx context.Context, id string) ([]byte, error)
	EpisodeResources(ctx context.Context, id string) ([]store.Version, error)
	Prepare(c *store.EpisodeChange)
}

// IDMismatchError reports a document whose id differs from the id in the
// request path.
type IDMismatchError struct{}

func (IDMismatchError) Error() string { return "the document id differs from the id in the path" }

// Service accepts episode documents.
type Service struct {
	store      Store
	now        func() time.Time
	systemBase string
	rx         Prescriber // nil: prescriptions are not sent (see prescribe.go)
	outbox     Outbox     // nil: nothing is pushed to partners (see outbox.go)
}

// New returns a Service writing to st. systemBase is the base URI of the
// gateway's identifier systems ("" for the mappers' default).
func New(st Store, now func() time.Time, systemBase string) *Service {
	return &Service{store: st, now: now, systemBase: systemBase}
}

// Result is what one accepted document did.
type Result struct {
	Created bool
	Entries []store.Entry
	// Prescriptions reports the rule findings and queued messages of the
	// prescriptions this document wrote (see prescribe.go).
	Prescriptions []pharmacy.Checked
}

// Put validates and stores the document as the new snapshot of episode id.
// Invalid documents return kap.Issues (wrapped) and store nothing.
func (s *Service) Put(ctx context.Context, id string, body []byte) (Result, error) {
	ep, issues := kap.Decode(body)
	if issues != nil {
		return Result{}, issues
	}
	if ep.ID != id {
		return Result{}, IDMismatchError{}
	}
	doc, digest, err := canonical(body)
	if err != nil {
		return Result{}, err
	}
	// Map and encode before taking the episode's write lock, against the
	// document stored now; inside the transaction the work is redone only
	// if another writer changed the episode in between.
	pre, preDigest, err := s.precompute(ctx, id, ep, doc, digest)
	if err != nil {
		return Result{}, err
	}
	s.store.Prepare(&pre)
	var checked []pharmacy.Checked
	res, err := s.store.ApplyEpisodeTx(ctx, id, func(prevDoc []byte, prevDigest string) (store.EpisodeChange, error) {
		if prevDigest == preDigest {
			return pre, nil
		}
		return s.change(ep, doc, digest, prevDoc, prevDigest)
	}, s.hooks(id, ep, &checked))
	if err != nil {
		return Result{}, fmt.Errorf("apply episode %s: %w", id, err)
	}
	return Result{Created: res.Created, Entries: res.Entries, Prescriptions: checked}, nil
}

// precompute builds the change against the currently stored document and
// returns it with that document's digest ("" when there is none).
func (s *Service) precompute(ctx context.Context, id string, ep *kap.Episode, doc []byte, digest string) (store.EpisodeChange, string, error) {
	prevDoc, err := s.store.Episode(ctx, id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		prevDoc = nil
	case err != nil:
		return store.EpisodeChange{}, "", fmt.Errorf("load episode %s: %w", id, err)
	}
	prevDigest := ""
	if prevDoc != nil {
		sum := sha256.Sum256(prevDoc)
		prevDigest = hex.EncodeToString(sum[:])
	}
	ch, err := s.change(ep, doc, digest, prevDoc, prevDigest)
	return ch, prevDigest, err
}

// change builds the write for one accepted document: every resource of the
// new mapping, plus the resources of the previous document that the new one
// no longer names, retired.
func (s *Service) change(ep *kap.Episode, doc []byte, digest string, prevDoc []byte, prevDigest string) (store.EpisodeChange, error) {
	ch := store.EpisodeChange{Document: doc, Digest: digest}
	next, err := mappers.Map(ep, s.options(digest, s.now()))
	if err != nil {
		return ch, fmt.Errorf("map episode: %w", err)
	}
	var retired []mappers.Resource
	// The same document again writes nothing; the store only reports the
	// current versions of the resources listed.
	if prevDoc != nil && prevDigest != digest {
		var prev kap.Episode
		if err := json.Unmarshal(prevDoc, &prev); err != nil {
			return ch, fmt.Errorf("decode previous document: %w", err)
		}
		prevRes, err := mappers.Map(&prev, s.options(prevDigest, s.now()))
		if err != nil {
			return ch, fmt.Errorf("map previous document: %w", err)
		}
		retired = mappers.Retire(prevRes, next)
	}
	patientID := patientOf(next)
	ch.Access = patientAccess(ep, patientID)
	ch.Removed = make(map[string]bool, len(retired))
	for _, r := range retired {
		ch.Removed[r.Type+"/"+r.ID] = true
	}
	for _, r := range append(next, retired...) {
		body, err := fhirjson.Marshal(r.Value)
		if err != nil {
			return ch, fmt.Errorf("encode %s/%s: %w", r.Type, r.ID, err)
		}
		ch.Resources = append(ch.Resources, store.Resource{Type: r.Type, ID: r.ID, PatientID: compartment(r, patientID), Body: body})
	}
	return ch, nil
}

func (s *Service) options(digest string, recorded time.Time) mappers.Options {
	return mappers.Options{SystemBase: s.systemBase, Recorded: recorded, DocumentDigest: digest}
}

// compartment is the patient a resource belongs to: the Patient itself and
// everything derived from this episode. Shared resources (a Practitioner, an
// Organization) belong to no single patient.
func compartment(r mappers.Resource, patientID string) string {
	if r.Type == "Patient" || r.Scope == mappers.Episode {
		return patientID
	}
	return ""
}

// patientOf returns the id of the Patient resource of a mapping.
func patientOf(rs []mappers.Resource) string {
	for _, r := range rs {
		if r.Type == "Patient" {
			return r.ID
		}
	}
	return ""
}

// Preview validates a document and maps it without storing anything. It
// returns the encoded resources, or the issues that would refuse it.
func (s *Service) Preview(body []byte) ([][]byte, error) {
	ep, issues := kap.Decode(body)
	if issues != nil {
		return nil, issues
	}
	_, digest, err := canonical(body)
	if err != nil {
		return nil, err
	}
	rs, err := mappers.Map(ep, s.options(digest, s.now()))
	if err != nil {
		return nil, fmt.Errorf("map episode: %w", err)
	}
	out := make([][]byte, 0, len(rs))
	for _, r := range rs {
		b, err := fhirjson.Marshal(r.Value)
		if err != nil {
			return nil, fmt.Errorf("encode %s/%s: %w", r.Type, r.ID, err)
		}
		out = append(out, b)
	}
	return out, nil
}

// Document returns the last accepted document of an episode.
func (s *Service) Document(ctx context.Context, id string) ([]byte, error) {
	doc, err := s.store.Episode(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("load episode %s: %w", id, err)
	}
	return doc, nil
}

// Current returns the current version of every resource the episode's last
// accepted document maps to (resources retired by later documents are left
// out; they stay readable by id and in history).
func (s *Service) Current(ctx context.Context, id string) ([]store.Version, error) {
	doc, err := s.Document(ctx, id)
	if err != nil {
		return nil, err
	}
	var ep kap.Episode
	if err := json.Unmarshal(doc, &ep); err != nil {
		return nil, fmt.Errorf("decode stored episode %s: %w", id, err)
	}
	_, digest, err := canonical(doc)
	if err != nil {
		return nil, err
	}
	rs, err := mappers.Map(&ep, s.options(digest, s.now()))
	if err != nil {
		return nil, fmt.Errorf("map stored episode %s: %w", id, err)
	}
	want := make(map[string]bool, len(rs))
	for _, r := range rs {
		want[r.Type+"/"+r.ID] = true
	}
	all, err := s.store.EpisodeResources(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("load resources of episode %s: %w", id, err)
	}
	out := all[:0]
	for _, v := range all {
		if want[v.Type+"/"+v.ID] {
			out = append(out, v)
		}
	}
	return out, nil
}

// canonical compacts a JSON document and returns it with its hex SHA-256, so
// that re-sending the same document with other whitespace changes nothing.
func canonical(body []byte) ([]byte, string, error) {
	var buf bytes.Buffer
	if err := json.Compact(&buf, body); err != nil {
		return nil, "", errors.New("compact document: invalid JSON")
	}
	sum := sha256.Sum256(buf.Bytes())
	return buf.Bytes(), hex.EncodeToString(sum[:]), nil
}
