package fhirjson

import (
	"fmt"
	"time"

	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"
)

// instantLayout writes FHIR instants with millisecond precision in UTC.
const instantLayout = "2006-01-02T15:04:05.000Z07:00"

// WithMeta returns body with meta.versionId and meta.lastUpdated set,
// keeping every other element (including meta.profile) as it was. A missing
// meta is inserted right after id, where FHIR puts it.
func WithMeta(body []byte, versionID string, lastUpdated time.Time) ([]byte, error) {
	if versionID == "" {
		return nil, fmt.Errorf("set meta: empty versionId")
	}
	if _, err := ResourceType(body); err != nil {
		return nil, fmt.Errorf("set meta: %w", err)
	}
	stamp := lastUpdated.UTC().Format(instantLayout)
	if meta := gjson.GetBytes(body, "meta"); !meta.Exists() {
		return insertMeta(body, versionID, stamp)
	} else if !meta.IsObject() {
		return nil, fmt.Errorf("set meta: meta is not an object")
	}
	out, err := sjson.SetBytes(body, "meta.versionId", versionID)
	if err != nil {
		return nil, fmt.Errorf("set meta.versionId: %w", err)
	}
	out, err = sjson.SetBytes(out, "meta.lastUpdated", stamp)
	if err != nil {
		return nil, fmt.Errorf("set meta.lastUpdated: %w", err)
	}
	return out, nil
}

// insertMeta adds a new meta member after id (or after resourceType when
// there is no id).
func insertMeta(body []byte, versionID, stamp string) ([]byte, error) {
	after := gjson.GetBytes(body, "id")
	if !after.Exists() {
		after = gjson.GetBytes(body, "resourceType")
	}
	if after.Index <= 0 {
		return nil, fmt.Errorf("set meta: cannot locate id in body")
	}
	meta, err := sjson.SetBytes([]byte(`{}`), "versionId", versionID)
	if err == nil {
		meta, err = sjson.SetBytes(meta, "lastUpdated", stamp)
	}
	if err != nil {
		return nil, fmt.Errorf("set meta: %w", err)
	}
	at := after.Index + len(after.Raw)
	out := make([]byte, 0, len(body)+len(meta)+8)
	out = append(out, body[:at]...)
	out = append(out, `,"meta":`...)
	out = append(out, meta...)
	return append(out, body[at:]...), nil
}
