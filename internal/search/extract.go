package search

import (
	"strings"

	"github.com/tidwall/gjson"
)

// Value is one index entry of a resource: the value a parameter takes.
type Value struct {
	Param string // the parameter name
	Kind  Kind
	// Token: System (may be empty) and Code.
	System, Code string
	// Reference: "Type/id".
	Ref string
	// Date: the instants covered, as [Lo, Hi) in milliseconds since the
	// epoch.
	Lo, Hi int64
}

// Extract returns the index values of a resource of type typ. Values that
// cannot be parsed (a malformed date) are left out: the resource is simply
// not found by them.
func (r *Registry) Extract(typ string, body []byte) []Value {
	var out []Value
	for _, p := range r.params[typ] {
		for _, path := range p.Paths {
			walk(gjson.GetBytes(body, firstStep(path)), restSteps(path), func(v gjson.Result) {
				out = appendValues(out, p, v)
			})
		}
	}
	return out
}

func firstStep(path string) string {
	first, _, _ := strings.Cut(path, ".")
	return first
}

func restSteps(path string) string {
	_, rest, _ := strings.Cut(path, ".")
	return rest
}

// walk calls fn for every value at path below v, descending into arrays.
func walk(v gjson.Result, path string, fn func(gjson.Result)) {
	switch {
	case !v.Exists():
	case v.IsArray():
		v.ForEach(func(_, e gjson.Result) bool {
			walk(e, path, fn)
			return true
		})
	case path == "":
		fn(v)
	default:
		walk(v.Get(firstStep(path)), restSteps(path), fn)
	}
}

// appendValues adds what element v contributes to parameter p.
func appendValues(out []Value, p Param, v gjson.Result) []Value {
	switch p.Kind {
	case Token:
		return appendTokens(out, p.Name, v)
	case Reference:
		ref := v.Get("reference").String()
		typ, id, ok := strings.Cut(ref, "/")
		if !ok || typ == "" || id == "" || (p.Target != "" && typ != p.Target) {
			return out
		}
		return append(out, Value{Param: p.Name, Kind: Reference, Ref: ref})
	case Date:
		lo, hi, ok := elementRange(v)
		if !ok {
			return out
		}
		return append(out, Value{Param: p.Name, Kind: Date, Lo: lo, Hi: hi})
	}
	return out
}

// appendTokens handles the element types a token parameter indexes: code
// (and uri), Coding, CodeableConcept and Identifier.
func appendTokens(out []Value, name string, v gjson.Result) []Value {
	switch {
	case v.Type == gjson.String:
		return append(out, Value{Param: name, Kind: Token, Code: v.String()})
	case v.Get("coding").Exists():
		v.Get("coding").ForEach(func(_, c gjson.Result) bool {
			out = appendTokens(out, name, c)
			return true
		})
		return out
	case v.Get("code").Exists():
		return append(out, Value{Param: name, Kind: Token, System: v.Get("system").String(), Code: v.Get("code").String()})
	case v.Get("value").Exists():
		return append(out, Value{Param: name, Kind: Token, System: v.Get("system").String(), Code: v.Get("value").String()})
	}
	return out
}

// elementRange is the instants a date, dateTime, instant or Period covers.
func elementRange(v gjson.Result) (int64, int64, bool) {
	if v.Type == gjson.String {
		return ParseRange(v.String())
	}
	lo, hi := int64(minTime), int64(maxTime)
	var okLo, okHi bool
	if s := v.Get("start"); s.Exists() {
		if lo, _, okLo = ParseRange(s.String()); !okLo {
			return 0, 0, false
		}
	}
	if e := v.Get("end"); e.Exists() {
		if _, hi, okHi = ParseRange(e.String()); !okHi {
			return 0, 0, false
		}
	}
	return lo, hi, okLo || okHi
}
