package kap

import (
	_ "embed"
	"fmt"
	"math/big"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
)

// schemaJSON is a verbatim copy of the shared contract,
// /work/shared/kap-episode/kap-episode.schema.json.
//
//go:embed kap-episode.schema.json
var schemaJSON string

// schemaURL is the absolute name the schema is registered under, so that its
// relative $id resolves without looking at the file system.
const schemaURL = "https://kapgw.invalid/schema/kap-episode.schema.json"

// compiledSchema compiles the embedded schema once, on first use. The
// compiled schema is immutable and safe for concurrent use.
var compiledSchema = sync.OnceValues(func() (*jsonschema.Schema, error) {
	doc, err := jsonschema.UnmarshalJSON(strings.NewReader(schemaJSON))
	if err != nil {
		return nil, fmt.Errorf("parse KAP episode schema: %w", err)
	}
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	if err := c.AddResource(schemaURL, doc); err != nil {
		return nil, fmt.Errorf("add KAP episode schema: %w", err)
	}
	sch, err := c.Compile(schemaURL)
	if err != nil {
		return nil, fmt.Errorf("compile KAP episode schema: %w", err)
	}
	return sch, nil
})

// validateSchema validates the generic tree against the schema and converts
// the leaf causes of the failure into issues.
func validateSchema(tree any) Issues {
	sch, err := compiledSchema()
	if err != nil {
		return Issues{{Code: CodeException, Message: "the KAP episode schema is unavailable"}}
	}
	err = sch.Validate(tree)
	if err == nil {
		return nil
	}
	verr, ok := err.(*jsonschema.ValidationError)
	if !ok {
		return Issues{{Code: CodeException, Message: "schema validation failed"}}
	}
	var issues Issues
	for _, leaf := range leaves(verr, nil) {
		issues = append(issues, schemaIssues(tree, leaf)...)
	}
	return issues
}

// leaves appends the causes of e that have no causes themselves.
func leaves(e *jsonschema.ValidationError, out []*jsonschema.ValidationError) []*jsonschema.ValidationError {
	if len(e.Causes) == 0 {
		return append(out, e)
	}
	for _, c := range e.Causes {
		out = leaves(c, out)
	}
	return out
}

// expression converts the library's instance location (the tokens of a JSON
// pointer) to an expression, looking at the tree to tell array indexes from
// object keys that happen to be digits.
func expression(tree any, location []string) string {
	expr := ""
	for _, tok := range location {
		if arr, ok := tree.([]any); ok {
			i, err := strconv.Atoi(tok)
			if err != nil || i < 0 || i >= len(arr) {
				return expr // unreachable: the library reports real locations
			}
			expr, tree = element(expr, i), arr[i]
			continue
		}
		obj, _ := tree.(map[string]any)
		expr, tree = member(expr, tok), obj[tok]
	}
	return expr
}

// schemaIssues turns one leaf validation error into issues. Messages are
// built from the schema (limits, allowed codes), never from the document.
func schemaIssues(tree any, e *jsonschema.ValidationError) Issues {
	expr := expression(tree, e.InstanceLocation)
	one := func(code, msg string) Issues { return Issues{{Code: code, Expression: expr, Message: msg}} }
	switch k := e.ErrorKind.(type) {
	case *kind.Required:
		return perProperty(expr, k.Missing, CodeRequired, "required field is missing")
	case *kind.AdditionalProperties:
		return perProperty(expr, k.Properties, CodeNotSupported, "unknown field")
	case *kind.Type:
		return one(CodeStructure, "wrong type: expected "+strings.Join(k.Want, " or "))
	case *kind.Enum:
		return enumIssue(expr, k.Got, k.Want)
	case *kind.Const:
		return enumIssue(expr, k.Got, []any{k.Want})
	case *kind.Format:
		return one(CodeValue, formatMessage(k.Want))
	case *kind.Pattern:
		if strings.HasSuffix(e.SchemaURL, "#/$defs/id") && len(k.Got) > 64 {
			return one(CodeTooLong, "must be at most 64 characters")
		}
		return one(CodeValue, "must match the pattern "+k.Want)
	case *kind.MinLength:
		return one(CodeValue, fmt.Sprintf("must be at least %d character(s)", k.Want))
	case *kind.MaxLength:
		return one(CodeTooLong, fmt.Sprintf("must be at most %d characters", k.Want))
	case *kind.MinItems:
		return one(CodeRequired, fmt.Sprintf("must have at least %d item(s)", k.Want))
	case *kind.MaxItems:
		return one(CodeValue, fmt.Sprintf("must have at most %d item(s)", k.Want))
	case *kind.Minimum:
		return one(CodeValue, "must be at least "+ratString(k.Want))
	case *kind.Maximum:
		return one(CodeValue, "must be at most "+ratString(k.Want))
	case *kind.ExclusiveMinimum:
		return one(CodeValue, "must be greater than "+ratString(k.Want))
	case *kind.ExclusiveMaximum:
		return one(CodeValue, "must be less than "+ratString(k.Want))
	}
	kw := strings.Join(e.ErrorKind.KeywordPath(), "/")
	return one(CodeInvalid, "violates the schema's "+kw+" rule")
}

// perProperty reports one issue for each named property of the object at expr.
func perProperty(expr string, props []string, code, msg string) Issues {
	sort.Strings(props)
	issues := make(Issues, len(props))
	for i, p := range props {
		issues[i] = Issue{Code: code, Expression: member(expr, p), Message: msg}
	}
	return issues
}

// enumIssue reports a value outside an enum or const: a wrong JSON type when
// none of the allowed values has the value's type, else a wrong code.
func enumIssue(expr string, got any, want []any) Issues {
	codes := make([]string, len(want))
	sameType := false
	for i, w := range want {
		codes[i] = fmt.Sprint(w)
		sameType = sameType || jsonType(w) == jsonType(got)
	}
	if !sameType {
		return Issues{{Code: CodeStructure, Expression: expr, Message: "wrong type: expected " + jsonType(want[0])}}
	}
	return Issues{{Code: CodeCodeInvalid, Expression: expr, Message: "must be one of: " + strings.Join(codes, ", ")}}
}

// jsonType names the JSON type of a generic value.
func jsonType(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case string:
		return "string"
	case map[string]any:
		return "object"
	case []any:
		return "array"
	}
	return "number"
}

// formatMessage explains a format the value does not have.
func formatMessage(format string) string {
	switch format {
	case "date":
		return "must be a date (YYYY-MM-DD)"
	case "date-time":
		return "must be an RFC 3339 date-time with a time zone"
	case "email":
		return "must be an email address"
	}
	return "must be in " + format + " format"
}

// ratString prints a schema limit.
func ratString(r *big.Rat) string {
	if r == nil {
		return "the limit"
	}
	if r.IsInt() {
		return r.Num().String()
	}
	return r.FloatString(2)
}
