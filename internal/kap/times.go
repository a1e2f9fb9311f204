package kap

import "time"

// maxOffset is the widest UTC offset FHIR's dateTime and instant allow.
const maxOffset = 14 * time.Hour

// instant parses an RFC 3339 date-time the way the rest of the gateway does;
// ok is false when s is absent or not one.
func instant(s string) (t time.Time, ok bool) {
	t, err := time.Parse(time.RFC3339, s)
	return t, err == nil
}

// dateTimeOK reports whether s is a date-time every later stage can use: Go
// parses it (so no lower-case "t" or "z", no leap second, which the schema's
// format check lets through) and FHIR accepts its offset (at most 14 hours).
func dateTimeOK(s string) bool {
	t, ok := instant(s)
	if !ok {
		return false
	}
	_, off := t.Zone()
	d := time.Duration(off) * time.Second
	return d <= maxOffset && d >= -maxOffset
}

// dateTime reports a present date-time at expr that dateTimeOK refuses.
func (c *checker) dateTime(expr, s string) {
	if s != "" && !dateTimeOK(s) {
		c.add(CodeValue, expr, "must be an RFC 3339 date-time with an upper-case T and a time zone within 14 hours of UTC")
	}
}

// dateTimes checks every date-time field of e.
func (c *checker) dateTimes(e *Episode) {
	if e.Period != nil {
		c.dateTime("period.start", e.Period.Start)
		c.dateTime("period.end", e.Period.End)
	}
	for i, k := range e.Consents {
		c.dateTime(member(element("consents", i), "signedAt"), k.SignedAt)
		c.dateTime(member(element("consents", i), "revokedAt"), k.RevokedAt)
	}
	for i, s := range e.Sessions {
		c.sessionDateTimes(element("sessions", i), s)
	}
	for i, m := range e.Measures {
		c.dateTime(member(element("measures", i), "takenAt"), m.TakenAt)
	}
	for i, rx := range e.Prescriptions {
		c.dateTime(member(element("prescriptions", i), "writtenAt"), rx.WrittenAt)
	}
}

// sessionDateTimes checks the date-time fields of session s at expr.
func (c *checker) sessionDateTimes(expr string, s Session) {
	c.dateTime(member(expr, "start"), s.Start)
	c.dateTime(member(expr, "end"), s.End)
	if d := s.Dose; d != nil {
		c.dateTime(member(member(expr, "dose"), "administeredAt"), d.AdministeredAt)
		if d.Booster != nil {
			c.dateTime(member(member(member(expr, "dose"), "booster"), "administeredAt"), d.Booster.AdministeredAt)
		}
	}
	for j, v := range s.Vitals {
		c.dateTime(member(element(member(expr, "vitals"), j), "takenAt"), v.TakenAt)
	}
	for j, a := range s.AdverseEvents {
		c.dateTime(member(element(member(expr, "adverseEvents"), j), "onset"), a.Onset)
	}
}
