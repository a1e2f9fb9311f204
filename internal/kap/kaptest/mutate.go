package kaptest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// remove is the value that makes an edit delete the member or element at its
// path instead of setting it.
type remove struct{}

// dupMarker is the key a duplicate is built under before it is renamed; no
// example uses it.
const dupMarker = "kaptest-duplicate-key"

// set returns example name with the value at path (an expression such as
// "sessions[3].dose.mg") replaced by v, or deleted when v is remove{}. An
// index one past the end of an array appends. The result is compact JSON with
// object keys sorted.
func set(name, path string, v any) []byte {
	var tree any
	dec := json.NewDecoder(bytes.NewReader(Example(name)))
	dec.UseNumber()
	if err := dec.Decode(&tree); err != nil {
		panic(fmt.Sprintf("kaptest: example %s: %v", name, err))
	}
	tree = apply(tree, parsePath(path), v)
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(tree); err != nil {
		panic(fmt.Sprintf("kaptest: edit %s: %v", path, err))
	}
	return bytes.TrimSpace(buf.Bytes())
}

// duplicate returns example name with the member key of the object at
// objPath ("" for the document) written twice, both times with value v.
func duplicate(name, objPath, key string, v any) []byte {
	path := dupMarker
	if objPath != "" {
		path = objPath + "." + dupMarker
	}
	body := set(name, path, v)
	return bytes.Replace(body, []byte(`"`+dupMarker+`":`), []byte(`"`+key+`":`), 1)
}

// step is one step of a path: an object key, or an array index when key is
// empty.
type step struct {
	key   string
	index int
}

// parsePath splits "a.b[3].c" into steps.
func parsePath(path string) []step {
	var steps []step
	for part := range strings.SplitSeq(path, ".") {
		key, rest, _ := strings.Cut(part, "[")
		steps = append(steps, step{key: key})
		for rest != "" {
			num, after, _ := strings.Cut(rest, "]")
			i, err := strconv.Atoi(num)
			if err != nil {
				panic(fmt.Sprintf("kaptest: bad path %q", path))
			}
			steps = append(steps, step{index: i})
			rest = strings.TrimPrefix(after, "[")
		}
	}
	return steps
}

// apply edits node along steps and returns the edited node.
func apply(node any, steps []step, v any) any {
	if len(steps) == 0 {
		return v
	}
	s, last := steps[0], len(steps) == 1
	_, del := v.(remove)
	switch n := node.(type) {
	case map[string]any:
		if s.key != "" {
			if last && del {
				delete(n, s.key)
				return n
			}
			n[s.key] = apply(n[s.key], steps[1:], v)
			return n
		}
	case []any:
		if s.key == "" && s.index <= len(n) {
			if last && del {
				return slices.Delete(n, s.index, s.index+1)
			}
			if s.index == len(n) {
				n = append(n, nil)
			}
			n[s.index] = apply(n[s.index], steps[1:], v)
			return n
		}
	}
	panic(fmt.Sprintf("kaptest: path step %+v does not fit the document", s))
}
