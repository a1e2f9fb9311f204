package sync

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/kapgw/kapgw/internal/store"
	"github.com/kapgw/kapgw/mappers"
)

// errPage marks a search answer the gateway cannot read.
var errPage = errors.New("unreadable search page")

// searchPage is what a pull needs of a searchset Bundle.
type searchPage struct {
	entries []pulledEntry
	next    string
}

// pulledEntry is one resource of a search page.
type pulledEntry struct {
	Type, ID    string
	LastUpdated string
	// Subject is the reference of subject, or of patient for the types
	// that name it so (AllergyIntolerance).
	Subject string
	// Systems are the systems of its identifiers.
	Systems []string
	Raw     json.RawMessage
}

// parsePage reads a searchset Bundle.
func parsePage(body []byte) (searchPage, error) {
	var b struct {
		ResourceType string `json:"resourceType"`
		Link         []struct {
			Relation string `json:"relation"`
			URL      string `json:"url"`
		} `json:"link"`
		Entry []struct {
			Resource json.RawMessage `json:"resource"`
		} `json:"entry"`
	}
	if err := json.Unmarshal(body, &b); err != nil || b.ResourceType != "Bundle" {
		return searchPage{}, errPage
	}
	var p searchPage
	for _, l := range b.Link {
		if l.Relation == "next" {
			p.next = l.URL
		}
	}
	for _, e := range b.Entry {
		var r struct {
			ResourceType string `json:"resourceType"`
			ID           string `json:"id"`
			Meta         struct {
				LastUpdated string `json:"lastUpdated"`
			} `json:"meta"`
			Subject struct {
				Reference string `json:"reference"`
			} `json:"subject"`
			Patient struct {
				Reference string `json:"reference"`
			} `json:"patient"`
			Identifier []struct {
				System string `json:"system"`
			} `json:"identifier"`
		}
		if err := json.Unmarshal(e.Resource, &r); err != nil {
			return searchPage{}, errPage
		}
		pe := pulledEntry{Type: r.ResourceType, ID: r.ID, LastUpdated: r.Meta.LastUpdated,
			Subject: cmpOr(r.Subject.Reference, r.Patient.Reference), Raw: e.Resource}
		for _, i := range r.Identifier {
			pe.Systems = append(pe.Systems, i.System)
		}
		p.entries = append(p.entries, pe)
	}
	return p, nil
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// about reports whether the entry's subject is the partner's patient
// remote: Patient/{remote}, relative or absolute.
func (e pulledEntry) about(remote string) bool {
	return e.ID != "" && (e.Subject == "Patient/"+remote || strings.HasSuffix(e.Subject, "/Patient/"+remote))
}

// ours reports whether the entry is one of our own resources, pushed to
// the partner: it carries an identifier in one of our systems (those under
// prefix, {SystemBase}/sid/).
func (e pulledEntry) ours(prefix string) bool {
	for _, s := range e.Systems {
		if strings.HasPrefix(s, prefix) && !strings.HasPrefix(s, prefix+"external/") {
			return true
		}
	}
	return false
}

// relativeRef is a FHIR relative reference, possibly versioned.
var relativeRef = regexp.MustCompile(`^[A-Z][A-Za-z]+/[A-Za-z0-9\-.]{1,64}(/_history/[A-Za-z0-9\-.]{1,64})?$`)

// rewrite makes a partner's resource ours: our deterministic id, its
// subject our patient, its other references absolute at the partner (we
// hold none of those resources), meta.source naming the partner (with the
// partner's tags and security labels kept), and an identifier carrying the
// partner's id. Keys come out sorted, so the same partner content always
// gives the same bytes and a re-pull writes no version.
func (w *PullWorker) rewrite(d store.Destination, patientID string, e pulledEntry) (store.Pulled, error) {
	dec := json.NewDecoder(bytes.NewReader(e.Raw))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return store.Pulled{}, errPage
	}
	absolute(m, d.BaseURL)
	id := ExternalID(d.PartnerID, e.Type, e.ID)
	m["id"] = id
	field := "subject"
	if e.Type == "AllergyIntolerance" {
		field = "patient"
	}
	m[field] = map[string]any{"reference": "Patient/" + patientID}
	meta := map[string]any{"source": w.partnerURI(d.PartnerID)}
	if old, ok := m["meta"].(map[string]any); ok {
		for _, k := range []string{"security", "tag"} {
			if v, ok := old[k]; ok {
				meta[k] = v
			}
		}
	}
	m["meta"] = meta
	ident := map[string]any{"system": w.opt.SystemBase + "/sid/external/" + d.PartnerID, "value": e.ID}
	idents, _ := m["identifier"].([]any)
	m["identifier"] = append(idents, ident)
	body, err := json.Marshal(m)
	if err != nil {
		return store.Pulled{}, fmt.Errorf("encode pulled %s: %w", id, err)
	}
	return store.Pulled{Resource: store.Resource{Type: e.Type, ID: id, PatientID: patientID, Body: body}, RemoteID: e.ID}, nil
}

// absolute turns every relative reference in v into an absolute one at
// base.
func absolute(v any, base string) {
	switch t := v.(type) {
	case map[string]any:
		for k, x := range t {
			if s, ok := x.(string); ok && k == "reference" && relativeRef.MatchString(s) {
				t[k] = base + "/" + s
				continue
			}
			absolute(x, base)
		}
	case []any:
		for _, x := range t {
			absolute(x, base)
		}
	}
}

// ExternalID is our id for a partner's resource: deterministic in the
// partner, the type and the partner's id, in the mappers' id style (a
// valid FHIR id of at most 38 characters).
func ExternalID(partnerID, typ, remoteID string) string {
	return mappers.ID(typ, "external", partnerID, typ, remoteID)
}

// partnerURI names a partner in meta.source and Provenance.
func (w *PullWorker) partnerURI(partnerID string) string {
	return w.opt.SystemBase + "/partner/" + partnerID
}

// provenance builds the Provenance of a stored page: the partner as the
// author (an identifier-only Organization reference), every created or
// updated resource as a target, and the partner's copies as sources.
func (w *PullWorker) provenance(d store.Destination, patientID string, rs []store.Pulled) store.ProvenanceFunc {
	remote := make(map[string]string, len(rs))
	for _, r := range rs {
		remote[r.Type+"/"+r.ID] = r.Type + "/" + r.RemoteID
	}
	return func(written []store.Entry, recorded time.Time) (store.Resource, error) {
		keys := make([]string, len(written))
		for i, e := range written {
			keys[i] = e.Type + "/" + e.ID + "/" + strconv.FormatInt(e.VersionID, 10)
		}
		slices.Sort(keys)
		id := mappers.ID("Provenance", append([]string{"pull", d.PartnerID}, keys...)...)
		var targets, entities []any
		for _, e := range written {
			ref := e.Type + "/" + e.ID
			targets = append(targets, map[string]any{"reference": ref})
			entities = append(entities, map[string]any{"role": "source", "what": map[string]any{"reference": d.BaseURL + "/" + remote[ref]}})
		}
		p := map[string]any{
			"resourceType": "Provenance", "id": id,
			"meta":     map[string]any{"source": w.partnerURI(d.PartnerID)},
			"target":   targets,
			"recorded": recorded.UTC().Format("2006-01-02T15:04:05.000Z07:00"),
			"agent": []any{map[string]any{
				"type": map[string]any{"coding": []any{map[string]any{
					"system": "http://terminology.hl7.org/CodeSystem/provenance-participant-type", "code": "author", "display": "Author"}}},
				"who": map[string]any{"type": "Organization",
					"identifier": map[string]any{"system": w.opt.SystemBase + "/sid/partner", "value": d.PartnerID}},
			}},
			"entity": entities,
		}
		body, err := json.Marshal(p)
		if err != nil {
			return store.Resource{}, fmt.Errorf("encode provenance: %w", err)
		}
		return store.Resource{Type: "Provenance", ID: id, PatientID: patientID, Body: body}, nil
	}
}

// patientIdentifier returns "system|value" of the Patient's identifier in
// system.
func patientIdentifier(body []byte, system string) (string, bool) {
	var p struct {
		Identifier []struct {
			System string `json:"system"`
			Value  string `json:"value"`
		} `json:"identifier"`
	}
	if err := json.Unmarshal(body, &p); err != nil {
		return "", false
	}
	for _, i := range p.Identifier {
		if i.System == system && i.Value != "" {
			return i.System + "|" + i.Value, true
		}
	}
	return "", false
}

// get reads one page of a partner's FHIR API (see send).
func (c *partnerClient) get(ctx context.Context, u string) ([]byte, int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, 0, fmt.Errorf("search request: %w", err)
	}
	return c.send(ctx, "GET search", req)
}
