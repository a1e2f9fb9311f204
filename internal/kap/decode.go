package kap

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"unicode/utf8"
)

// maxDepth bounds how deeply a document may nest. The schema needs six
// levels; anything far deeper is an attack or a bug, not an episode.
const maxDepth = 32

// Decode parses and fully validates a KAP episode document. It runs four
// stages and stops at the first that finds issues, so that each answer is about
// one kind of problem:
//
//  1. strict JSON: well-formed UTF-8 JSON, one object, no trailing data, no
//     duplicate keys at any depth;
//  2. shape: every key is a known field and every value has the field's JSON
//     type (integers are whole numbers);
//  3. the JSON schema (kap-episode.schema.json), with format assertions;
//  4. the semantic checks of [Episode.Validate].
//
// It returns the episode and nil, or nil and the issues sorted by expression.
// It never panics.
func Decode(data []byte) (*Episode, Issues) {
	tree, issues := parseStrict(data)
	if len(issues) > 0 {
		return nil, issues
	}
	var e Episode
	if issues := decodeShape(tree, &e); len(issues) > 0 {
		return nil, issues.sorted()
	}
	if issues := validateSchema(tree); len(issues) > 0 {
		return nil, issues.sorted()
	}
	if issues := e.Validate(); len(issues) > 0 {
		return nil, issues
	}
	return &e, nil
}

// parseStrict checks that data is exactly one well-formed JSON object and
// returns it as a generic tree (objects as map[string]any, numbers as
// json.Number) with duplicate keys reported.
func parseStrict(data []byte) (any, Issues) {
	whole := func(msg string, args ...any) Issues {
		return Issues{{Code: CodeStructure, Message: fmt.Sprintf(msg, args...)}}
	}
	if !utf8.Valid(data) {
		return nil, whole("document is not valid UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	var raw json.RawMessage
	if err := dec.Decode(&raw); err != nil {
		var syntax *json.SyntaxError
		switch {
		case errors.Is(err, io.EOF):
			return nil, whole("document is empty")
		case errors.Is(err, io.ErrUnexpectedEOF):
			return nil, whole("document is truncated")
		case errors.As(err, &syntax):
			return nil, whole("malformed JSON at byte offset %d", syntax.Offset)
		}
		return nil, whole("malformed JSON")
	}
	if off := dec.InputOffset(); len(bytes.TrimSpace(data[off:])) > 0 {
		return nil, whole("unexpected data after the document at byte offset %d", off)
	}
	if raw[0] != '{' {
		return nil, whole("document must be a JSON object")
	}
	b := treeBuilder{dec: json.NewDecoder(bytes.NewReader(raw))}
	b.dec.UseNumber()
	tree, err := b.value(0)
	if errors.Is(err, errTooDeep) {
		return nil, whole("document nests more than %d levels deep", maxDepth)
	}
	if err != nil { // unreachable: raw is already known to be well-formed
		return nil, whole("malformed JSON")
	}
	if len(b.issues) > 0 {
		return nil, b.issues.sorted()
	}
	return tree, nil
}

// treeBuilder turns a token stream into a generic tree while tracking where
// it is, so duplicate keys can be reported where they are. The path is kept
// as segments and made into an expression only for a duplicate: building
// one string per value was a tenth of Decode's allocations.
type treeBuilder struct {
	dec    *json.Decoder
	path   []pathSeg
	issues Issues
}

// pathSeg is one step of the path to the current value: an object key, or
// an array index when isIndex.
type pathSeg struct {
	key     string
	index   int
	isIndex bool
}

// expr returns the expression of the current value.
func (b *treeBuilder) expr() string {
	expr := ""
	for _, seg := range b.path {
		if seg.isIndex {
			expr = element(expr, seg.index)
		} else {
			expr = member(expr, seg.key)
		}
	}
	return expr
}

// value reads one value at the current path.
func (b *treeBuilder) value(depth int) (any, error) {
	if depth > maxDepth {
		return nil, errTooDeep
	}
	tok, err := b.dec.Token()
	if err != nil {
		return nil, err
	}
	switch tok {
	case json.Delim('{'):
		return b.object(depth)
	case json.Delim('['):
		return b.array(depth)
	}
	return tok, nil
}

// errTooDeep stops the walk of a document nested beyond maxDepth.
var errTooDeep = errors.New("nested too deeply")

// object reads the members of an object whose '{' was just read.
func (b *treeBuilder) object(depth int) (any, error) {
	obj := map[string]any{}
	for b.dec.More() {
		tok, err := b.dec.Token()
		if err != nil {
			return nil, err
		}
		key, _ := tok.(string) // the decoder only yields strings as keys
		b.path = append(b.path, pathSeg{key: key})
		v, err := b.value(depth + 1)
		if err != nil {
			return nil, err
		}
		if _, dup := obj[key]; dup {
			b.issues = append(b.issues, Issue{Code: CodeStructure, Expression: b.expr(), Message: "duplicate key"})
		} else {
			obj[key] = v
		}
		b.path = b.path[:len(b.path)-1]
	}
	_, err := b.dec.Token() // '}'
	return obj, err
}

// array reads the elements of an array whose '[' was just read.
func (b *treeBuilder) array(depth int) (any, error) {
	arr := []any{}
	for b.dec.More() {
		b.path = append(b.path, pathSeg{index: len(arr), isIndex: true})
		v, err := b.value(depth + 1)
		if err != nil {
			return nil, err
		}
		b.path = b.path[:len(b.path)-1]
		arr = append(arr, v)
	}
	_, err := b.dec.Token() // ']'
	return arr, err
}
