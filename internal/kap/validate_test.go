package kap_test

import (
	"strings"
	"testing"

	"github.com/kapgw/kapgw/internal/kap"
	"github.com/kapgw/kapgw/internal/kap/kaptest"
)

// decoded returns the valid example name as an Episode.
func decoded(t testing.TB, name string) *kap.Episode {
	t.Helper()
	e, issues := kap.Decode(kaptest.Example(name))
	if len(issues) > 0 {
		t.Fatalf("Decode(%s) = %v", name, issues)
	}
	return e
}

// assertIssues fails unless issues are exactly want, as "code expression".
func assertIssues(t testing.TB, issues kap.Issues, want ...string) {
	t.Helper()
	got := make([]string, len(issues))
	for i, is := range issues {
		got[i] = is.Code + " " + is.Expression
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("issues:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestValidateNil(t *testing.T) {
	t.Parallel()
	var e *kap.Episode
	assertIssues(t, e.Validate(), "required ")
}

func TestValidateReportsEveryProblemSorted(t *testing.T) {
	t.Parallel()
	e := decoded(t, kaptest.HomeDosing)
	e.CareTeam.Prescriber.DEA = ""
	e.Sessions[3].Chaperone = nil
	e.Sessions[1].Dose = e.Sessions[5].Dose
	e.Measures[0].Items = []int{3, 3, 3, 3, 3, 3, 3, 3, 3}
	e.Measures[5].SessionID = "nowhere"
	e.Prescriptions[0].Refills = 9
	assertIssues(t, e.Validate(),
		"required careTeam.prescriber.dea",
		"business-rule measures[0].items",
		"business-rule measures[5].sessionId",
		"business-rule prescriptions[0].refills",
		"business-rule sessions[1].dose",
		"required sessions[3].chaperone",
	)
}

func TestValidateMeasureItems(t *testing.T) {
	t.Parallel()
	e := decoded(t, kaptest.FourDosings)
	e.Measures[1].Items = []int{3, 3, 3, 3, 3, 0, 0} // GAD-7, score 15
	e.Measures[2].Items = make([]int, 23)            // CADSS, score 6
	e.Measures[2].Items[0], e.Measures[2].Items[1] = 4, 2
	if issues := e.Validate(); len(issues) > 0 {
		t.Fatalf("valid items refused: %v", issues)
	}
	e.Measures[2].Items[22] = 5
	e.Measures[2].Score = 11
	assertIssues(t, e.Validate(), "value measures[2].items[22]")
}

// TestValidateDateTimes checks that an unparseable date-time is reported once,
// as a value, and not compared; and that comparison works across notations.
func TestValidateDateTimes(t *testing.T) {
	t.Parallel()
	e := decoded(t, kaptest.HomeDosing)
	e.Sessions[0].End = "soon"
	e.Period.End = "2026-03-23T13:59:59-04:00" // one second before start, in another zone
	assertIssues(t, e.Validate(), "business-rule period.end", "value sessions[0].end")
}

func TestIssuesError(t *testing.T) {
	t.Parallel()
	issues := kap.Issues{
		{Code: kap.CodeStructure, Message: "document is truncated"},
		{Code: kap.CodeValue, Expression: "sessions[3].dose.mg", Message: "must be greater than 0"},
	}
	want := "invalid KAP episode: (document): document is truncated; sessions[3].dose.mg: must be greater than 0"
	if got := issues.Error(); got != want {
		t.Fatalf("Error() = %q, want %q", got, want)
	}
	var err error = issues
	if err.Error() != want {
		t.Fatalf("Issues is not an error")
	}
}
