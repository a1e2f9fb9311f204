package search

import (
	"math"
	"regexp"
	"time"
)

// The bounds of an open Period, in milliseconds.
const (
	minTime = math.MinInt64 / 2
	maxTime = math.MaxInt64 / 2
)

// dateForm matches the FHIR date, dateTime and instant forms: a year,
// year-month, date, or date-time with seconds (optionally fractional) and an
// offset. Times without seconds are accepted in search values.
var dateForm = regexp.MustCompile(`^(\d{4})(-(\d{2})(-(\d{2})(T(\d{2}):(\d{2})(:(\d{2})(\.\d+)?)?(Z|[+-]\d{2}:\d{2}))?)?)?$`)

// ParseRange parses a FHIR date, dateTime or instant (a search value or an
// element) into the instants it covers, [lo, hi) in milliseconds: 2026 is
// the whole year, 2026-04 the month, 2026-04-03 the day (all in UTC), a
// date-time with seconds the second (or millisecond, with a fraction).
func ParseRange(s string) (lo, hi int64, ok bool) {
	m := dateForm.FindStringSubmatch(s)
	if m == nil {
		return 0, 0, false
	}
	var layout string
	var step func(time.Time) time.Time
	switch {
	case m[6] != "" && m[9] == "":
		layout, step = "2006-01-02T15:04Z07:00", func(t time.Time) time.Time { return t.Add(time.Minute) }
	case m[11] != "":
		layout, step = time.RFC3339Nano, func(t time.Time) time.Time { return t.Add(time.Millisecond) }
	case m[6] != "":
		layout, step = time.RFC3339, func(t time.Time) time.Time { return t.Add(time.Second) }
	case m[5] != "":
		layout, step = time.DateOnly, func(t time.Time) time.Time { return t.AddDate(0, 0, 1) }
	case m[3] != "":
		layout, step = "2006-01", func(t time.Time) time.Time { return t.AddDate(0, 1, 0) }
	default:
		layout, step = "2006", func(t time.Time) time.Time { return t.AddDate(1, 0, 0) }
	}
	t, err := time.Parse(layout, s)
	if err != nil {
		return 0, 0, false
	}
	t = t.Truncate(time.Millisecond)
	return t.UnixMilli(), step(t).UnixMilli(), true
}
