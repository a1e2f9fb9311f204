package kap

import (
	"cmp"
	"encoding/json"
	"slices"
	"strconv"
	"strings"
)

// Issue codes, the FHIR issue-type codes a refused document is reported with.
//
// CodeStructure alone means the bytes could not be read as an episode at all
// (not JSON, not an object, a duplicate key, a value of the wrong JSON type);
// the HTTP layer answers 400 for it and 422 for every other code, which marks a
// document that reads but breaks the schema's constraints or the clinic's
// rules.
const (
	CodeStructure    = "structure"
	CodeRequired     = "required"
	CodeValue        = "value"
	CodeInvalid      = "invalid"
	CodeCodeInvalid  = "code-invalid"
	CodeTooLong      = "too-long"
	CodeNotSupported = "not-supported"
	CodeBusinessRule = "business-rule"
	CodeException    = "exception"
)

// Issue is one problem found in a document, pointing at the field.
//
// Messages never echo document values, so issues may be logged and returned
// to partners without leaking PHI.
type Issue struct {
	// Code is a FHIR issue-type code, one of the Code constants.
	Code string
	// Expression names the field in the document's own JSON terms, such as
	// "sessions[3].dose.mg" or "patient.name.given[0]"; it is empty when the
	// issue concerns the whole document.
	Expression string
	// Message says what is wrong for a human, without document values.
	Message string
}

// Issues is a list of issues; it implements error so that a refused document
// can travel up the call stack as one.
type Issues []Issue

// Error lists every issue as "expression: message".
func (is Issues) Error() string {
	parts := make([]string, len(is))
	for i, issue := range is {
		expr := issue.Expression
		if expr == "" {
			expr = "(document)"
		}
		parts[i] = expr + ": " + issue.Message
	}
	return "invalid KAP episode: " + strings.Join(parts, "; ")
}

// sorted orders issues by expression, then code and message, so that the same
// document always yields the same list.
func (is Issues) sorted() Issues {
	slices.SortStableFunc(is, func(a, b Issue) int {
		return cmp.Or(
			cmp.Compare(a.Expression, b.Expression),
			cmp.Compare(a.Code, b.Code),
			cmp.Compare(a.Message, b.Message),
		)
	})
	return slices.Compact(is)
}

// member returns the expression of the object member key under parent. Keys
// that are not plain identifiers are written as a quoted index: a["x.y"].
func member(parent, key string) string {
	if !plainKey(key) {
		quoted, _ := json.Marshal(key) // a string always marshals
		return parent + "[" + string(quoted) + "]"
	}
	if parent == "" {
		return key
	}
	return parent + "." + key
}

// plainKey reports whether key can be written after a dot in an expression.
func plainKey(key string) bool {
	for i, r := range key {
		letter := r == '_' || r == '$' || ('a' <= r && r <= 'z') || ('A' <= r && r <= 'Z')
		if !letter && (i == 0 || !(r == '-' || ('0' <= r && r <= '9'))) {
			return false
		}
	}
	return key != ""
}

// element returns the expression of the array element i under parent.
func element(parent string, i int) string {
	return parent + "[" + strconv.Itoa(i) + "]"
}
