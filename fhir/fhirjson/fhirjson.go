// Package fhirjson owns how kapgw writes and reads FHIR R4 JSON. Every
// resource the gateway emits passes through Marshal and every FHIR document
// it reads into samply structs passes through Unmarshal, so the defects of
// the samply models (github.com/samply/golang-fhir-models) are handled here
// once.
//
// Writing. Marshal encodes with encoding/json and then rewrites the bytes in
// one token-level pass (no map[string]any, no float64):
//   - empty strings, arrays, objects and nulls are removed, and so are the
//     parents that become empty;
//   - resourceType is written first (samply writes it last);
//   - samply writes every form of a required choice element
//     (MedicationRequest.medication[x] as both medicationCodeableConcept and
//     an empty medicationReference; every Task.input.value[x] form as false,
//     0 or ""): only the set form is kept, a boolean false when no form is
//     set but one is boolean, and two set forms or none at all are errors;
//   - numbers are copied byte for byte as encoding/json wrote them.
//
// MarshalWith adds what samply cannot express: contained resources
// (Contained) and extensions on primitive elements (PrimitiveExtension).
//
// Reading. samply decodes a missing required code as the first code of its
// value set (an Encounter without status becomes "planned") and drops
// unknown elements. Unmarshal therefore refuses documents that lack an
// element samply would invent (a *RequiredError naming the elements) or whose
// resourceType is not the target's. Callers that must not lose data keep
// the document as a Raw, which holds the original bytes next to the type and
// id, and decode a typed view from it when they need one.
package fhirjson

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"regexp"
	"strings"

	r4 "github.com/samply/golang-fhir-models/fhir-models/fhir"
	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"
)

// Marshal encodes a samply r4 resource (or any value) as clean FHIR JSON, as
// described in the package documentation.
func Marshal(v any) ([]byte, error) {
	return MarshalWith(v)
}

// Option adds to what MarshalWith writes.
type Option func(*options)

type options struct {
	contained  []any
	extensions []primitiveExtension
}

type primitiveExtension struct {
	path string
	ext  r4.Extension
}

// Contained adds resources to the contained element of the resource being
// written, because samply's resource structs have no contained field. Each
// may be a samply value or already encoded JSON ([]byte or json.RawMessage)
// and must have an id, which the container references as "#id".
func Contained(res ...any) Option {
	return func(o *options) { o.contained = append(o.contained, res...) }
}

// PrimitiveExtension adds ext to the primitive element at path (such as
// "status" or "dosageInstruction[0].timing.repeat.periodUnit"), written as
// "_status": {"extension": [...]}, because samply has no place for it.
// Extensions on elements of repeating primitives are not supported.
func PrimitiveExtension(path string, ext r4.Extension) Option {
	return func(o *options) { o.extensions = append(o.extensions, primitiveExtension{path: path, ext: ext}) }
}

// MarshalWith is Marshal with additions samply cannot express.
func MarshalWith(v any, opts ...Option) ([]byte, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	raw, err := encode(v)
	if err != nil {
		return nil, fmt.Errorf("encode fhir json: %w", err)
	}
	contained, err := o.containedMember()
	if err != nil {
		return nil, err
	}
	out, err := rewrite(raw, contained)
	if err != nil {
		return nil, fmt.Errorf("encode fhir json: %w", err)
	}
	return o.applyExtensions(out)
}

// encode is json.Marshal(v) without its second pass over the bytes when v
// encodes itself: samply's resource types implement MarshalJSON with
// json.Marshal, so their output is already compact, valid and HTML-escaped,
// and json.Marshal would only re-scan and copy it (a fifth of Marshal's
// time). The rewriter that follows reads the bytes again in any case. A nil
// pointer still goes through json.Marshal, which writes null.
func encode(v any) ([]byte, error) {
	if m, ok := v.(json.Marshaler); ok {
		if rv := reflect.ValueOf(v); rv.Kind() != reflect.Pointer || !rv.IsNil() {
			return m.MarshalJSON()
		}
	}
	return json.Marshal(v)
}

// containedMember encodes `"contained":[...]`, or returns nil when there is
// nothing to contain.
func (o *options) containedMember() ([]byte, error) {
	if len(o.contained) == 0 {
		return nil, nil
	}
	b := []byte(`"contained":[`)
	for i, res := range o.contained {
		enc, err := encodeContained(res)
		if err != nil {
			return nil, err
		}
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, enc...)
	}
	return append(b, ']'), nil
}

func encodeContained(res any) ([]byte, error) {
	var enc []byte
	var err error
	switch r := res.(type) {
	case json.RawMessage:
		enc, err = rewriteRaw(r)
	case []byte:
		enc, err = rewriteRaw(r)
	default:
		enc, err = Marshal(res)
	}
	if err != nil {
		return nil, fmt.Errorf("encode contained resource: %w", err)
	}
	typ := gjson.GetBytes(enc, "resourceType").String()
	if !gjson.GetBytes(enc, "id").Exists() {
		return nil, fmt.Errorf("encode contained %s: no id to reference it by", typ)
	}
	if gjson.GetBytes(enc, "contained").Exists() {
		return nil, fmt.Errorf("encode contained %s: contained resources cannot contain resources", typ)
	}
	return enc, nil
}

// rewriteRaw cleans already encoded JSON the same way Marshal does.
func rewriteRaw(data []byte) ([]byte, error) {
	if !json.Valid(data) {
		return nil, fmt.Errorf("invalid JSON")
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, data); err != nil {
		return nil, fmt.Errorf("compact: %w", err)
	}
	return rewrite(buf.Bytes(), nil)
}

// primitivePath matches "a.b[0].c" element paths.
const primitivePathPattern = `^([A-Za-z][A-Za-z0-9]*(\[[0-9]+\])?\.)*[A-Za-z][A-Za-z0-9]*$`

func (o *options) applyExtensions(out []byte) ([]byte, error) {
	if len(o.extensions) == 0 {
		return out, nil
	}
	valid := regexp.MustCompile(primitivePathPattern)
	for _, pe := range o.extensions {
		if !valid.MatchString(pe.path) {
			return nil, fmt.Errorf("primitive extension path %q is not an element path", pe.path)
		}
		parent, target := extensionTarget(pe.path)
		if parent != "" && !gjson.GetBytes(out, parent).IsObject() {
			return nil, fmt.Errorf("primitive extension %s: no element %s", pe.path, parent)
		}
		ext, err := Marshal(pe.ext)
		if err != nil {
			return nil, fmt.Errorf("primitive extension %s: %w", pe.path, err)
		}
		if out, err = addExtension(out, target, ext); err != nil {
			return nil, fmt.Errorf("primitive extension %s: %w", pe.path, err)
		}
	}
	return out, nil
}

// extensionTarget turns "a[0].b.c" into the gjson/sjson paths "a.0.b" (the
// object holding the primitive) and "a.0.b._c".
func extensionTarget(path string) (parent, target string) {
	p := strings.NewReplacer("[", ".", "]", "").Replace(path)
	if i := strings.LastIndexByte(p, '.'); i >= 0 {
		return p[:i], p[:i] + "._" + p[i+1:]
	}
	return "", "_" + p
}

func addExtension(out []byte, target string, ext []byte) ([]byte, error) {
	if gjson.GetBytes(out, target).Exists() {
		return sjson.SetRawBytes(out, target+".extension.-1", ext)
	}
	return sjson.SetRawBytes(out, target, append(append([]byte(`{"extension":[`), ext...), ']', '}'))
}
