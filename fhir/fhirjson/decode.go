package fhirjson

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"

	r4 "github.com/samply/golang-fhir-models/fhir-models/fhir"
	"github.com/tidwall/gjson"
)

// RequiredError reports required elements that a document lacks and that
// samply would have invented a value for. Paths name elements only (such as
// "Encounter.status" or "MedicationRequest.medication[x]"), never values, so
// the error is safe to log and to put into an OperationOutcome.
type RequiredError struct {
	Paths []string
}

// Error lists the missing elements.
func (e *RequiredError) Error() string {
	return strings.Join(e.Paths, " is required; ") + " is required"
}

// Raw is a FHIR resource kept as the bytes it arrived in, so that elements
// samply does not know survive storage and forwarding. Type and ID are read
// from the bytes; decode a typed view with Decode when one is needed.
type Raw struct {
	Type string
	ID   string
	JSON json.RawMessage
}

// Parse checks that data is one JSON object with a resourceType and wraps it
// as a Raw without copying it.
func Parse(data []byte) (Raw, error) {
	typ, err := ResourceType(data)
	if err != nil {
		return Raw{}, err
	}
	id, err := ID(data)
	if err != nil {
		return Raw{}, err
	}
	return Raw{Type: typ, ID: id, JSON: data}, nil
}

// Decode decodes the resource into the samply struct v with Unmarshal.
func (r Raw) Decode(v any) error {
	return Unmarshal(r.JSON, v)
}

// Unmarshal decodes FHIR JSON into the samply struct v (a pointer such as
// *r4.Encounter). It refuses, with a *RequiredError, documents that lack an
// element samply would invent, and documents whose resourceType is not v's.
// Unknown elements are dropped by samply; keep a Raw when they matter.
func Unmarshal(data []byte, v any) error {
	typ, err := ResourceType(data)
	if err != nil {
		return err
	}
	if want := samplyResourceName(v); want != "" && want != typ {
		return fmt.Errorf("decode fhir json: resourceType is %s, want %s", typ, want)
	}
	if missing := checkRequired(data); len(missing) > 0 {
		return &RequiredError{Paths: missing}
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("decode %s: %w", typ, err)
	}
	return nil
}

// samplyResourceName returns the resource type of a pointer to a samply
// resource struct, or "" for anything else.
func samplyResourceName(v any) string {
	t := reflect.TypeOf(v)
	if t == nil || t.Kind() != reflect.Pointer {
		return ""
	}
	t = t.Elem()
	if t.PkgPath() != reflect.TypeOf(r4.Patient{}).PkgPath() || resourceTypeID(t.Name()) == tNone {
		return ""
	}
	return t.Name()
}

// ResourceType returns the resourceType of a FHIR JSON resource.
func ResourceType(body []byte) (string, error) {
	if !gjson.ValidBytes(body) {
		return "", fmt.Errorf("fhir json: invalid JSON")
	}
	root := gjson.ParseBytes(body)
	if !root.IsObject() {
		return "", fmt.Errorf("fhir json: not a JSON object")
	}
	rt := root.Get("resourceType")
	if rt.Type != gjson.String || rt.Str == "" {
		return "", fmt.Errorf("fhir json: resourceType is missing")
	}
	return rt.Str, nil
}

// ID returns the id of a FHIR JSON resource, or "" when it has none.
func ID(body []byte) (string, error) {
	if !gjson.ValidBytes(body) {
		return "", fmt.Errorf("fhir json: invalid JSON")
	}
	id := gjson.GetBytes(body, "id")
	switch id.Type {
	case gjson.Null:
		return "", nil
	case gjson.String:
		return id.Str, nil
	}
	return "", fmt.Errorf("fhir json: id is not a string")
}
