package kap

import (
	"encoding/json"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
)

// maxSafeInt is the largest integer every JSON implementation (and float64)
// represents exactly; larger integers are refused rather than rounded.
const maxSafeInt = 1<<53 - 1

// decodeShape stores the generic tree into e, field by field, reporting every
// unknown key and every value of the wrong JSON type at its expression. It is
// encoding/json's Unmarshal with DisallowUnknownFields, except that it keeps
// going after the first problem and knows where each one is.
func decodeShape(tree any, e *Episode) Issues {
	var s shaper
	s.value("", tree, reflect.ValueOf(e).Elem())
	return s.issues
}

// shaper accumulates the issues of one decodeShape walk.
type shaper struct {
	issues Issues
}

func (s *shaper) add(code, expr, msg string) {
	s.issues = append(s.issues, Issue{Code: code, Expression: expr, Message: msg})
}

// value stores v, found at expr, into dst.
func (s *shaper) value(expr string, v any, dst reflect.Value) {
	if v == nil {
		s.add(CodeStructure, expr, "must not be null")
		return
	}
	switch dst.Kind() {
	case reflect.Pointer:
		dst.Set(reflect.New(dst.Type().Elem()))
		s.value(expr, v, dst.Elem())
	case reflect.Struct:
		s.object(expr, v, dst)
	case reflect.Slice:
		s.array(expr, v, dst)
	case reflect.String:
		str, ok := v.(string)
		s.check(ok, expr, "string")
		dst.SetString(str)
	case reflect.Bool:
		b, ok := v.(bool)
		s.check(ok, expr, "boolean")
		dst.SetBool(b)
	case reflect.Int:
		s.integer(expr, v, dst)
	case reflect.Float64:
		s.number(expr, v, dst)
	default: // unreachable: Episode uses only the kinds above
		s.add(CodeException, expr, "field of unsupported Go type")
	}
}

// check reports a wrong type unless ok.
func (s *shaper) check(ok bool, expr, want string) {
	if !ok {
		s.add(CodeStructure, expr, "wrong type: expected "+want)
	}
}

// object stores a JSON object into the struct dst, field by field.
func (s *shaper) object(expr string, v any, dst reflect.Value) {
	obj, ok := v.(map[string]any)
	if !ok {
		s.check(false, expr, "object")
		return
	}
	fields := jsonFields(dst.Type())
	keys := make([]string, 0, len(obj))
	for k := range obj {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		child := member(expr, k)
		i, known := fields[k]
		if !known {
			s.add(CodeNotSupported, child, "unknown field")
			continue
		}
		s.value(child, obj[k], dst.Field(i))
	}
}

// jsonFields maps the JSON names of a struct's fields to their indexes.
func jsonFields(t reflect.Type) map[string]int {
	fields := make(map[string]int, t.NumField())
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		if name != "" && name != "-" {
			fields[name] = i
		}
	}
	return fields
}

// array stores a JSON array into the slice dst, element by element.
func (s *shaper) array(expr string, v any, dst reflect.Value) {
	arr, ok := v.([]any)
	if !ok {
		s.check(false, expr, "array")
		return
	}
	dst.Set(reflect.MakeSlice(dst.Type(), len(arr), len(arr)))
	for i, elem := range arr {
		s.value(element(expr, i), elem, dst.Index(i))
	}
}

// integer stores a whole JSON number (1, 1.0 or 1e2) into the int dst.
func (s *shaper) integer(expr string, v any, dst reflect.Value) {
	n, ok := v.(json.Number)
	if !ok {
		s.check(false, expr, "integer")
		return
	}
	if i, err := strconv.ParseInt(string(n), 10, 64); err == nil && i >= -maxSafeInt && i <= maxSafeInt {
		dst.SetInt(i)
		return
	}
	f, err := strconv.ParseFloat(string(n), 64)
	switch {
	case err == nil && f != math.Trunc(f):
		s.check(false, expr, "integer")
	case err != nil || math.Abs(f) > maxSafeInt:
		s.add(CodeValue, expr, "number is too large")
	default:
		dst.SetInt(int64(f))
	}
}

// number stores a JSON number into the float64 dst.
func (s *shaper) number(expr string, v any, dst reflect.Value) {
	n, ok := v.(json.Number)
	if !ok {
		s.check(false, expr, "number")
		return
	}
	f, err := strconv.ParseFloat(string(n), 64)
	if err != nil {
		s.add(CodeValue, expr, "number is too large")
		return
	}
	dst.SetFloat(f)
}
