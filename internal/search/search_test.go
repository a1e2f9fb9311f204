package search

import (
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestParseRange(t *testing.T) {
	t.Parallel()
	ms := func(s string) int64 { tt, _ := time.Parse(time.RFC3339Nano, s); return tt.UnixMilli() }
	tests := []struct{ in, lo, hi string }{
		{"2026", "2026-01-01T00:00:00Z", "2027-01-01T00:00:00Z"},
		{"2026-04", "2026-04-01T00:00:00Z", "2026-05-01T00:00:00Z"},
		{"2026-04-03", "2026-04-03T00:00:00Z", "2026-04-04T00:00:00Z"},
		{"2026-04-03T10:00:00+02:00", "2026-04-03T08:00:00Z", "2026-04-03T08:00:01Z"},
		{"2026-04-03T10:00:00.250Z", "2026-04-03T10:00:00.250Z", "2026-04-03T10:00:00.251Z"},
	}
	for _, tt := range tests {
		lo, hi, ok := ParseRange(tt.in)
		if !ok || lo != ms(tt.lo) || hi != ms(tt.hi) {
			t.Errorf("ParseRange(%s) = %d, %d, %v; want %s, %s", tt.in, lo, hi, ok, tt.lo, tt.hi)
		}
	}
	if _, _, ok := ParseRange("yesterday"); ok {
		t.Error("ParseRange accepted yesterday")
	}
}

func TestExtract(t *testing.T) {
	t.Parallel()
	body := `{"resourceType":"Observation","id":"o","status":"final","identifier":[{"system":"s","value":"v"}],
		"category":[{"coding":[{"system":"c","code":"vital-signs"}]}],"code":{"coding":[{"system":"http://loinc.org","code":"44249-1"}]},
		"subject":{"reference":"Patient/p"},"encounter":{"reference":"Encounter/e"},"effectiveDateTime":"2026-04-03"}`
	got := fmt.Sprint(New().Extract("Observation", []byte(body)))
	for _, want := range []string{"{identifier token s v", "{status token  final", "{subject reference   Patient/p",
		"{patient reference   Patient/p", "{encounter reference   Encounter/e", "{category token c vital-signs", "{code token http://loinc.org 44249-1", "{date date"} {
		if !strings.Contains(got, want) {
			t.Errorf("Extract: %s lacks %q", got, want)
		}
	}
}

func TestParseRefusesBadValues(t *testing.T) {
	t.Parallel()
	for _, q := range []string{"date=bad", "date=xx2026", "_count=x", "patient=Practitioner/x", "_sort=code", "code=sys|", "_include=Observation:code", "unknown=1"} {
		vals, _ := url.ParseQuery(q)
		if _, err := New().Parse("Observation", vals, true); err == nil {
			t.Errorf("Parse(%s) strict: no error", q)
		}
	}
}
