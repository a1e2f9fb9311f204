package fhir

import (
	"fmt"
	"net/http"

	r4 "github.com/samply/golang-fhir-models/fhir-models/fhir"

	"github.com/kapgw/kapgw/fhir/fhirjson"
)

// Issue is one line of an OperationOutcome.
type Issue struct {
	Severity   string // fatal, error, warning, information
	Code       string // an issue-type code: invalid, structure, not-found, throttled ...
	Diagnostic string // human text; never carries patient data
	Expression string // the offending element, when there is one
}

// Error is a failure that the error handler renders as an OperationOutcome
// with the given HTTP status. Handlers return it (or errors it wraps).
type Error struct {
	Status int
	Issues []Issue
	Header http.Header // extra response headers, e.g. Retry-After
}

func (e *Error) Error() string {
	if len(e.Issues) == 0 {
		return fmt.Sprintf("http %d", e.Status)
	}
	return fmt.Sprintf("http %d: %s: %s", e.Status, e.Issues[0].Code, e.Issues[0].Diagnostic)
}

// newError returns an Error with a single error-severity issue.
func newError(status int, code, diagnostic string) *Error {
	return &Error{Status: status, Issues: []Issue{{Severity: "error", Code: code, Diagnostic: diagnostic}}}
}

// outcome encodes issues as an OperationOutcome resource.
func outcome(issues []Issue) ([]byte, error) {
	oo := r4.OperationOutcome{}
	for _, is := range issues {
		var sev r4.IssueSeverity
		if err := sev.UnmarshalJSON([]byte(`"` + is.Severity + `"`)); err != nil {
			return nil, fmt.Errorf("issue severity %q: %w", is.Severity, err)
		}
		var code r4.IssueType
		if err := code.UnmarshalJSON([]byte(`"` + is.Code + `"`)); err != nil {
			return nil, fmt.Errorf("issue code %q: %w", is.Code, err)
		}
		line := r4.OperationOutcomeIssue{Severity: sev, Code: code}
		if is.Diagnostic != "" {
			d := is.Diagnostic
			line.Diagnostics = &d
		}
		if is.Expression != "" {
			line.Expression = []string{is.Expression}
		}
		oo.Issue = append(oo.Issue, line)
	}
	return fhirjson.Marshal(oo)
}
