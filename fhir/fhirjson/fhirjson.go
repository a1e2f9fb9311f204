// Package fhirjson owns how kapgw writes and reads FHIR R4 JSON. Every
// resource the gateway emits passes through Marshal, which repairs the known
// defects of the samply FHIR models in one place.
package fhirjson

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/tidwall/sjson"
)

// Marshal encodes a samply r4 resource (or any value) as FHIR JSON.
//
// TODO(fhirjson helper): strip empties, repair medication[x], etc.
func Marshal(v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode fhir json: %w", err)
	}
	return b, nil
}

// WithMeta returns body with meta.versionId and meta.lastUpdated set,
// keeping every other element (including meta.profile) as it was.
func WithMeta(body []byte, versionID string, lastUpdated time.Time) ([]byte, error) {
	out, err := sjson.SetBytes(body, "meta.versionId", versionID)
	if err != nil {
		return nil, fmt.Errorf("set meta.versionId: %w", err)
	}
	out, err = sjson.SetBytes(out, "meta.lastUpdated", lastUpdated.UTC().Format("2006-01-02T15:04:05.000Z07:00"))
	if err != nil {
		return nil, fmt.Errorf("set meta.lastUpdated: %w", err)
	}
	return out, nil
}
