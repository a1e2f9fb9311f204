package fhirjson

import (
	"bytes"
	"fmt"
)

// rewriter copies compact JSON from in to out in one pass, dropping empty
// strings, arrays, objects and nulls (and parents that become empty by it),
// writing resourceType first in every resource, keeping only the set form
// of samply's required choice elements and inserting contained resources
// into the root resource. Values are copied byte for byte, so numbers keep
// the exact text encoding/json wrote.
type rewriter struct {
	in        []byte
	pos       int
	out       []byte
	path      []pathElem
	spans     []choiceSpan
	contained []byte // `"contained":[...]` for the root resource, or nil
	substance int    // count of written values that samply would not write for an unset field
	err       error
}

// pathElem is one element name on the way from the innermost resource (whose
// type is the name of the element marked resource) to the current value.
type pathElem struct {
	name     []byte
	resource bool
}

// choiceSpan is one written member of a required choice element.
type choiceSpan struct {
	group      int
	start, end int  // bytes of out, including the leading comma
	zero       bool // only false, 0 and default codes: what samply writes for an unset form
	boolean    bool
	drop       bool
}

// rewrite cleans the encoding/json output in as described on rewriter.
func rewrite(in, contained []byte) ([]byte, error) {
	w := rewriter{in: in, out: make([]byte, 0, len(in)+len(contained)), contained: contained, path: make([]pathElem, 0, 16), spans: make([]choiceSpan, 0, 16)}
	kept := w.value(tResource, "")
	if w.err != nil {
		return nil, w.err
	}
	if !kept {
		return nil, fmt.Errorf("nothing to encode: the value is empty")
	}
	if w.contained != nil {
		return nil, fmt.Errorf("contained resources need a resource to go into")
	}
	return w.out, nil
}

// value writes the value at pos and reports whether it was kept. def is the
// code samply writes when the (code) element was never set.
func (w *rewriter) value(t typeID, def string) bool {
	w.pos = skipWS(w.in, w.pos)
	start := w.pos
	switch w.in[start] {
	case '{':
		return w.object(t)
	case '[':
		return w.array(t)
	case '"':
		w.pos = skipString(w.in, start)
	default:
		w.pos = skipLiteral(w.in, start)
	}
	raw := w.in[start:w.pos]
	if len(raw) == 2 && raw[0] == '"' || string(raw) == "null" {
		return false
	}
	w.out = append(w.out, raw...)
	if !isDefault(raw, def) {
		w.substance++
	}
	return true
}

// isDefault reports whether a primitive is what samply writes for a field
// that was never set: false, 0, or the first code of a required code element.
func isDefault(raw []byte, def string) bool {
	switch string(raw) {
	case "false", "0":
		return true
	}
	return def != "" && len(raw) == len(def)+2 && string(raw[1:len(raw)-1]) == def
}

func (w *rewriter) array(t typeID) bool {
	start := len(w.out)
	w.out = append(w.out, '[')
	w.pos++
	n := 0
	for {
		w.pos = skipWS(w.in, w.pos)
		switch w.in[w.pos] {
		case ']':
			w.pos++
			if n == 0 {
				w.out = w.out[:start]
				return false
			}
			w.out = append(w.out, ']')
			return true
		case ',':
			w.pos++
			continue
		}
		mark := len(w.out)
		if n > 0 {
			w.out = append(w.out, ',')
		}
		if !w.value(t, "") {
			w.out = w.out[:mark]
			continue
		}
		n++
	}
}

// object writes the object at pos. For a resource it writes resourceType
// first and, at the root, the contained resources after the elements that
// precede contained in FHIR order.
func (w *rewriter) object(t typeID) bool {
	start, base, n := len(w.out), len(w.spans), 0
	w.out = append(w.out, '{')
	var rt []byte
	if t == tResource {
		if rt = memberValue(w.in, w.pos, "resourceType"); rt != nil {
			w.out = append(w.out, `"resourceType":`...)
			w.out = append(w.out, rt...)
			n = 1
			w.path = append(w.path, pathElem{name: bytes.Trim(rt, `"`), resource: true})
			defer func() { w.path = w.path[:len(w.path)-1] }()
		}
		t = resourceTypeID(string(bytes.Trim(rt, `"`)))
	}
	root := rt != nil && len(w.path) == 1
	w.pos++
	for {
		w.pos = skipWS(w.in, w.pos)
		switch w.in[w.pos] {
		case '}':
			w.pos++
			return w.closeObject(t, start, base, n, root)
		case ',':
			w.pos++
			continue
		}
		var key []byte
		key, w.pos = readKey(w.in, w.pos)
		if rt != nil && string(key) == "resourceType" {
			w.pos = skipValue(w.in, w.pos)
			continue
		}
		if root && w.contained != nil && !beforeContained(key) {
			n = w.writeContained(n)
		}
		if w.member(t, key, n) {
			n++
		}
	}
}

// member writes one member of an object of type t and reports whether it
// was kept.
func (w *rewriter) member(t typeID, key []byte, n int) bool {
	mark := len(w.out)
	if n > 0 {
		w.out = append(w.out, ',')
	}
	w.out = append(w.out, '"')
	w.out = append(w.out, key...)
	w.out = append(w.out, '"', ':')
	valueStart, substance := len(w.out), w.substance
	w.path = append(w.path, pathElem{name: key})
	kept := w.value(fieldType(t, string(key)), defaultCode(t, string(key)))
	w.path = w.path[:len(w.path)-1]
	if !kept {
		w.out = w.out[:mark]
		return false
	}
	if _, g := choiceGroup(t, key); g >= 0 {
		v := string(w.out[valueStart:])
		w.spans = append(w.spans, choiceSpan{group: g, start: mark, end: len(w.out), zero: w.substance == substance, boolean: v == "false" || v == "true"})
	}
	return true
}

func (w *rewriter) writeContained(n int) int {
	if n > 0 {
		w.out = append(w.out, ',')
	}
	w.out = append(w.out, w.contained...)
	w.contained = nil
	return n + 1
}

// beforeContained reports whether a resource element comes before contained
// in FHIR element order.
func beforeContained(key []byte) bool {
	switch string(key) {
	case "id", "meta", "implicitRules", "language", "text":
		return true
	}
	return false
}

func (w *rewriter) closeObject(t typeID, start, base, n int, root bool) bool {
	if root && w.contained != nil {
		n = w.writeContained(n)
	}
	if n > 0 && choiceGroups(t) != "" {
		w.resolveChoices(t, base)
	}
	w.spans = w.spans[:base]
	if n == 0 || len(w.out) == start+1 {
		w.out = w.out[:start]
		return false
	}
	w.out = append(w.out, '}')
	return true
}
