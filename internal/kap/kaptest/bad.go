package kaptest

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
)

// BadDocument is a document the intake must refuse, with the issue an API
// user should see for it.
//
// Status policy: 400 Bad Request when the body cannot be read as an episode at
// all (not UTF-8 JSON, not one object, a duplicate key, a value of the wrong
// JSON type: issue code "structure"); 422 Unprocessable Entity for a document
// that reads but breaks the schema's constraints (unknown field, missing
// field, bad code, pattern, format or bound) or the clinic's rules (check
// digits, references, time order, scores, chaperone, refills).
type BadDocument struct {
	// Name says what is wrong, in kebab case; names are unique.
	Name string
	// Body is the document: a valid example with one defect.
	Body []byte
	// Status is the HTTP status the intake answers with: 400 or 422.
	Status int
	// Code is the FHIR issue-type code of the expected issue.
	Code string
	// Expression is the expected issue's field, "" for the whole document.
	Expression string
	// Value is the offending string as it appears in Body, when there is one;
	// no issue message may echo it (it may be PHI).
	Value string
}

// bad builds a BadDocument whose status follows from its code.
func bad(name string, body []byte, code, expr string) BadDocument {
	status := http.StatusUnprocessableEntity
	if code == "structure" {
		status = http.StatusBadRequest
	}
	return BadDocument{Name: name, Body: body, Status: status, Code: code, Expression: expr}
}

// setBad builds a BadDocument that sets the string at path to value and
// expects an issue at that path; the value must not be echoed.
func setBad(name, example, path, value, code string) BadDocument {
	d := bad(name, set(example, path, value), code, path)
	d.Value = value
	return d
}

// BadDocuments returns a fresh catalogue of bad documents, each a single
// defect made by a small change to an example, grouped as malformed JSON,
// duplicate keys, unknown keys, wrong types, schema violations and semantic
// (business-rule) violations.
func BadDocuments() []BadDocument {
	var docs []BadDocument
	for _, group := range [][]BadDocument{malformed(), shape(), schema(), semantic()} {
		docs = append(docs, group...)
	}
	return docs
}

// malformed lists bodies that are not exactly one well-formed JSON object.
func malformed() []BadDocument {
	home := Example(HomeDosing)
	return []BadDocument{
		bad("empty-body", []byte{}, "structure", ""),
		bad("whitespace-body", []byte(" \n\t"), "structure", ""),
		bad("truncated", home[:len(home)/2], "structure", ""),
		bad("trailing-garbage", append(Example(HomeDosing), "garbage"...), "structure", ""),
		bad("trailing-second-object", append(Example(HomeDosing), "{}"...), "structure", ""),
		bad("missing-colon", bytes.Replace(home, []byte(`"status": "active"`), []byte(`"status" "active"`), 1), "structure", ""),
		bad("trailing-comma", bytes.Replace(home, []byte(`"sex": "female",`), []byte(`"sex": "female",,`), 1), "structure", ""),
		bad("not-an-object-array", []byte("["+string(home)+"]"), "structure", ""),
		bad("not-an-object-string", []byte(`"ep-700001"`), "structure", ""),
		bad("not-an-object-null", []byte("null"), "structure", ""),
		bad("invalid-utf8", bytes.Replace(home, []byte("Siobhán"), []byte("Siobh\xe1n"), 1), "structure", ""),
		bad("nested-too-deep", set(HomeDosing, "title", deep(40)), "structure", ""),
		bad("duplicate-top-level-key", duplicate(HomeDosing, "", "status", "active"), "structure", "status"),
		bad("duplicate-nested-key", duplicate(HomeDosing, "patient.name", "family", "Okafor"), "structure", "patient.name.family"),
		bad("duplicate-key-in-array-element", duplicate(FourDosings, "sessions[2].dose", "mg", 200), "structure", "sessions[2].dose.mg"),
	}
}

// deep returns n nested arrays.
func deep(n int) json.RawMessage {
	return json.RawMessage(strings.Repeat("[", n) + strings.Repeat("]", n))
}

// shape lists documents with unknown keys or values of the wrong JSON type.
func shape() []BadDocument {
	return []BadDocument{
		bad("unknown-top-level-key", set(HomeDosing, "notes", "x"), "not-supported", "notes"),
		bad("unknown-nested-key", set(HomeDosing, "patient.nickname", "x"), "not-supported", "patient.nickname"),
		bad("unknown-key-in-array-element", set(HomeDosing, "sessions[3].dose.strength", 100), "not-supported", "sessions[3].dose.strength"),
		bad("unknown-key-unusual-name", set(HomeDosing, "careTeam.prescriber.home address", "x"), "not-supported", `careTeam.prescriber["home address"]`),
		bad("string-for-number", set(HomeDosing, "sessions[3].dose.mg", "100"), "structure", "sessions[3].dose.mg"),
		bad("number-for-string", set(HomeDosing, "patient.name.family", 42), "structure", "patient.name.family"),
		bad("object-for-array", set(HomeDosing, "indications", map[string]any{"code": "F41.1"}), "structure", "indications"),
		bad("array-for-object", set(HomeDosing, "careTeam.prescriber", []any{}), "structure", "careTeam.prescriber"),
		bad("string-for-boolean", set(HomeDosing, "sessions[3].chaperone.present", "yes"), "structure", "sessions[3].chaperone.present"),
		bad("number-for-enum", set(HomeDosing, "status", 1), "structure", "status"),
		bad("fraction-for-integer", set(HomeDosing, "measures[0].score", 14.5), "structure", "measures[0].score"),
		bad("null-for-required-object", set(HomeDosing, "patient", nil), "structure", "patient"),
		bad("null-for-required-string", set(HomeDosing, "sessions[0].start", nil), "structure", "sessions[0].start"),
		bad("null-for-optional-string", set(HomeDosing, "title", nil), "structure", "title"),
		bad("string-in-integer-array", set(FourDosings, "measures[0].items", []any{"1"}), "structure", "measures[0].items[0]"),
	}
}
