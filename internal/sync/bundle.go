package sync

import (
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/kapgw/kapgw/internal/store"
)

// item is one resource in a transaction Bundle.
type item struct {
	Type, ID  string
	VersionID int64
	fullURL   string
	resource  map[string]any
	cond      string // Type?identifier=system|value
}

// typeRank orders resources so that what others refer to goes first: a
// partner may cap the entries of a transaction (Medplum: 8 with conditional
// updates), and chunks after the first refer to earlier ones by the
// partner's ids.
var typeRank = map[string]int{"Patient": 0, "Organization": 0, "Practitioner": 0, "Medication": 0,
	"PractitionerRole": 1, "CareTeam": 2, "Condition": 3, "EpisodeOfCare": 4, "CarePlan": 5, "Encounter": 6,
	"MedicationRequest": 7}

// parseItems decodes the resources to send, in dependency order. Resources
// without an identifier (Provenance) cannot be keyed and are left out, as
// are types the partner does not want.
func parseItems(vs []store.Version, want map[string]bool) ([]item, error) {
	var items []item
	for _, v := range vs {
		if v.Deleted || (len(want) > 0 && !want[v.Type]) {
			continue
		}
		var res map[string]any
		if err := json.Unmarshal(v.Body, &res); err != nil {
			return nil, fmt.Errorf("decode %s/%s: %w", v.Type, v.ID, err)
		}
		cond, ok := conditional(v.Type, res)
		if !ok {
			continue
		}
		items = append(items, item{Type: v.Type, ID: v.ID, VersionID: v.VersionID, fullURL: urnUUID(v.Type + "/" + v.ID), resource: res, cond: cond})
	}
	slices.SortStableFunc(items, func(a, b item) int { return rank(a.Type) - rank(b.Type) })
	return items, nil
}

func rank(t string) int {
	if r, ok := typeRank[t]; ok {
		return r
	}
	return 8
}

// encodeBundle makes the FHIR transaction Bundle that puts every item at
// the partner with a conditional update keyed on its identifier, so that a
// replay updates the same copy. References between items become their
// urn:uuid fullUrls; references to resources the partner already holds
// become the partner's ids.
func encodeBundle(items []item, held map[string]store.Delivered) ([]byte, error) {
	byRef := map[string]string{}
	for _, it := range items {
		byRef[it.Type+"/"+it.ID] = it.fullURL
	}
	entries := make([]map[string]any, 0, len(items))
	for _, it := range items {
		res := clone(it.resource).(map[string]any)
		delete(res, "id")
		if meta, ok := res["meta"].(map[string]any); ok {
			delete(meta, "versionId")
			delete(meta, "lastUpdated")
			if len(meta) == 0 {
				delete(res, "meta")
			}
		}
		rewrite(res, byRef, held)
		entries = append(entries, map[string]any{
			"fullUrl":  it.fullURL,
			"resource": res,
			"request":  map[string]any{"method": "PUT", "url": it.cond},
		})
	}
	b, err := json.Marshal(map[string]any{"resourceType": "Bundle", "type": "transaction", "entry": entries})
	if err != nil {
		return nil, fmt.Errorf("encode bundle: %w", err)
	}
	return b, nil
}

func clone(v any) any {
	switch x := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(x))
		for k, c := range x {
			m[k] = clone(c)
		}
		return m
	case []any:
		out := make([]any, len(x))
		for i, c := range x {
			out[i] = clone(c)
		}
		return out
	}
	return v
}

// conditional returns the conditional update URL of a resource keyed on
// its first identifier with a system and a value.
func conditional(typ string, res map[string]any) (string, bool) {
	ids, _ := res["identifier"].([]any)
	for _, x := range ids {
		id, _ := x.(map[string]any)
		sys, _ := id["system"].(string)
		val, _ := id["value"].(string)
		if sys != "" && val != "" {
			return typ + "?identifier=" + url.QueryEscape(sys+"|"+val), true
		}
	}
	return "", false
}

// rewrite points the references of v at the Bundle's fullUrls or the
// partner's ids.
func rewrite(v any, byRef map[string]string, held map[string]store.Delivered) {
	switch x := v.(type) {
	case map[string]any:
		for k, c := range x {
			if s, ok := c.(string); ok && k == "reference" {
				if u, ok := byRef[s]; ok {
					x[k] = u
				} else if d, ok := held[s]; ok && d.RemoteID != "" {
					x[k] = d.Type + "/" + d.RemoteID
				}
				continue
			}
			rewrite(c, byRef, held)
		}
	case []any:
		for _, c := range x {
			rewrite(c, byRef, held)
		}
	}
}

// urnUUID is a stable urn:uuid for one of our resources (a name-based
// UUID from SHA-256, version 8).
func urnUUID(name string) string {
	h := sha256.Sum256([]byte("kapgw-sync:" + name))
	h[6] = h[6]&0x0f | 0x80
	h[8] = h[8]&0x3f | 0x80
	return fmt.Sprintf("urn:uuid:%x-%x-%x-%x-%x", h[0:4], h[4:6], h[6:8], h[8:10], h[10:16])
}

// errResponse marks an answer the gateway cannot read.
var errResponse = errors.New("unreadable transaction-response")

// remoteIDs reads the partner's ids from a transaction-response Bundle, in
// the order of the request's entries. An entry whose status is not 2xx is
// the partner's answer for the whole delivery: a StatusError with host.
func remoteIDs(body []byte, items []item, host string) ([]store.Delivered, error) {
	var b struct {
		Type  string `json:"type"`
		Entry []struct {
			Response struct {
				Status   string `json:"status"`
				Location string `json:"location"`
			} `json:"response"`
		} `json:"entry"`
	}
	if err := json.Unmarshal(body, &b); err != nil {
		return nil, fmt.Errorf("%w: %v", errResponse, err)
	}
	if b.Type != "transaction-response" || len(b.Entry) != len(items) {
		return nil, fmt.Errorf("%w: %d entries for %d", errResponse, len(b.Entry), len(items))
	}
	out := make([]store.Delivered, len(items))
	for i, it := range items {
		code, _, _ := strings.Cut(strings.TrimSpace(b.Entry[i].Response.Status), " ")
		status, err := strconv.Atoi(code)
		if err != nil {
			return nil, fmt.Errorf("%w: entry %d has no status", errResponse, i)
		}
		if status/100 != 2 {
			return nil, &StatusError{Op: "transaction entry", Host: host, Status: status}
		}
		loc := strings.TrimPrefix(b.Entry[i].Response.Location, "/")
		if j := strings.Index(loc, it.Type+"/"); j >= 0 {
			loc = loc[j+len(it.Type)+1:]
		}
		remote, _, _ := strings.Cut(loc, "/")
		out[i] = store.Delivered{Type: it.Type, ID: it.ID, VersionID: it.VersionID, RemoteID: remote}
	}
	return out, nil
}
