package kap_test

import (
	"encoding/json"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/kapgw/kapgw/internal/kap"
	"github.com/kapgw/kapgw/internal/kap/kaptest"
)

func TestDecodeExamples(t *testing.T) {
	t.Parallel()
	for _, name := range kaptest.Examples() {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			e, issues := kap.Decode(kaptest.Example(name))
			if len(issues) > 0 || e == nil {
				t.Fatalf("Decode(%s) = %v", name, issues)
			}
			doses := 0
			for _, s := range e.Sessions {
				if s.Dose != nil {
					doses++
				}
			}
			if doses < 2 || e.CareTeam.Prescriber.DEA == "" {
				t.Fatalf("Decode(%s) lost data: %d doses", name, doses)
			}
		})
	}
}

// TestDecodeMatchesEncodingJSON checks that the path-tracking decoder fills
// the episode exactly as encoding/json would.
func TestDecodeMatchesEncodingJSON(t *testing.T) {
	t.Parallel()
	for _, name := range kaptest.Examples() {
		got, issues := kap.Decode(kaptest.Example(name))
		if len(issues) > 0 {
			t.Fatalf("Decode(%s) = %v", name, issues)
		}
		var want kap.Episode
		if err := json.Unmarshal(kaptest.Example(name), &want); err != nil {
			t.Fatalf("json.Unmarshal(%s): %v", name, err)
		}
		if !reflect.DeepEqual(*got, want) {
			t.Fatalf("Decode(%s) differs from json.Unmarshal", name) // no dump: the example is PHI-shaped
		}
	}
}

func TestDecodeBadDocuments(t *testing.T) {
	t.Parallel()
	docs := kaptest.BadDocuments()
	if len(docs) < 45 {
		t.Fatalf("only %d bad documents", len(docs))
	}
	seen := map[string]bool{}
	for _, d := range docs {
		if seen[d.Name] {
			t.Fatalf("bad document name %s repeats", d.Name)
		}
		seen[d.Name] = true
		t.Run(d.Name, func(t *testing.T) {
			t.Parallel()
			e, issues := kap.Decode(d.Body)
			if e != nil || len(issues) == 0 {
				t.Fatalf("Decode accepted the document")
			}
			// One defect, one issue: nothing else may be reported.
			if len(issues) != 1 || issues[0].Code != d.Code || issues[0].Expression != d.Expression {
				t.Fatalf("want one issue %s at %q, got %v", d.Code, d.Expression, issues)
			}
			if got := status(issues); got != d.Status {
				t.Fatalf("issues %v mean status %d, want %d", issues, got, d.Status)
			}
			assertNoPHI(t, issues, d.Value)
		})
	}
}

// status applies the documented policy: 400 when any issue is "structure".
func status(issues kap.Issues) int {
	for _, is := range issues {
		if is.Code == kap.CodeStructure {
			return http.StatusBadRequest
		}
	}
	return http.StatusUnprocessableEntity
}

// phi lists PHI of the home-dosing example, and the names of the clinicians
// and chaperone, which no message may echo.
var phi = []string{"Okafor", "Ines", "1984-02-19", "9189 Oak St", "Apt 37", "33130", "+1-555-754-4078",
	"patient700001@example.org", "MRN800001", "Nakamura", "Priya", "1968-01-05", "Adeyemi", "Hana", "O'Brien"}

// assertNoPHI fails when a message or the error text echoes PHI or the bad value.
func assertNoPHI(t testing.TB, issues kap.Issues, value string) {
	t.Helper()
	secrets := phi
	if value != "" {
		secrets = append(slices.Clone(phi), value)
	}
	for _, is := range issues {
		for _, s := range secrets {
			if strings.Contains(is.Message, s) {
				t.Fatalf("message of issue %s at %q echoes a document value", is.Code, is.Expression)
			}
		}
	}
	for _, s := range secrets {
		if strings.Contains(issues.Error(), s) && !strings.Contains(expressions(issues), s) {
			t.Fatalf("Error() echoes a document value")
		}
	}
}

// expressions joins the expressions of issues; an unknown key is named in
// its expression, which is not a value.
func expressions(issues kap.Issues) string {
	var b strings.Builder
	for _, is := range issues {
		b.WriteString(is.Expression)
	}
	return b.String()
}

// TestDecodeDeterministic decodes every document twice: the same bytes must
// give the same episode and the same issues in the same order.
func TestDecodeDeterministic(t *testing.T) {
	t.Parallel()
	bodies := [][]byte{kaptest.Example(kaptest.HomeDosing), kaptest.Example(kaptest.FourDosings)}
	for _, d := range kaptest.BadDocuments() {
		bodies = append(bodies, d.Body)
	}
	for i, body := range bodies {
		e1, is1 := kap.Decode(body)
		for range 3 {
			e2, is2 := kap.Decode(body)
			if !reflect.DeepEqual(e1, e2) || !reflect.DeepEqual(is1, is2) {
				t.Fatalf("document %d: Decode is not deterministic: %v then %v", i, is1, is2)
			}
		}
		if !slices.IsSortedFunc(is1, func(a, b kap.Issue) int { return strings.Compare(a.Expression, b.Expression) }) {
			t.Fatalf("document %d: issues not sorted by expression: %v", i, is1)
		}
	}
}

func BenchmarkDecode(b *testing.B) {
	body := kaptest.Example(kaptest.FourDosings)
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, issues := kap.Decode(body); len(issues) > 0 {
			b.Fatalf("Decode = %v", issues)
		}
	}
}
