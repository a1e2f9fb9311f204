package kap

import "fmt"

// MaxRefills is the most refills a Schedule III prescription may carry
// (21 CFR 1306.22); ketamine is Schedule III.
const MaxRefills = 5

// Validate runs the semantic checks the schema cannot express: identifier
// check digits, the DEA requirement for prescribers, unique and resolvable
// ids, date-times later stages can parse, doses only on dosing sessions, time
// order, outcome-measure ranges and
// item sums, the chaperone of at-home dosing, refill limits and plausible
// blood pressure. It assumes the shape the schema guarantees; a date-time it
// cannot parse is reported once and left out of comparisons, and a check
// whose inputs are absent is skipped. Issues come sorted by expression.
func (e *Episode) Validate() Issues {
	if e == nil {
		return Issues{{Code: CodeRequired, Message: "no episode"}}
	}
	var c checker
	c.dateTimes(e)
	c.period("period", e.Period)
	c.careTeam(e)
	c.pharmacy(e.Pharmacy)
	c.consents(e.Consents)
	rxWritten := c.prescriptions(e.Prescriptions)
	sessions := c.sessions(e.Sessions, rxWritten)
	c.measures(e.Measures, sessions)
	return c.issues.sorted()
}

// checker accumulates the issues of one Validate run.
type checker struct {
	issues Issues
}

func (c *checker) add(code, expr, msg string) {
	c.issues = append(c.issues, Issue{Code: code, Expression: expr, Message: msg})
}

// after reports end as not after start at expr when both parse.
func (c *checker) after(expr, start, end, startName string) {
	s, ok1 := instant(start)
	t, ok2 := instant(end)
	if ok1 && ok2 && !t.After(s) {
		c.add(CodeBusinessRule, expr, "must be after "+startName)
	}
}

func (c *checker) period(expr string, p *Period) {
	if p != nil {
		c.after(member(expr, "end"), p.Start, p.End, "start")
	}
}

func (c *checker) careTeam(e *Episode) {
	ct := e.CareTeam
	c.npi("careTeam.organization.npi", ct.Organization.NPI, false)
	if ct.TherapistOrganization != nil {
		c.npi("careTeam.therapistOrganization.npi", ct.TherapistOrganization.NPI, false)
	}
	c.clinician("careTeam.prescriber", ct.Prescriber)
	c.clinician("careTeam.therapist", ct.Therapist)
	if len(e.Prescriptions) > 0 && ct.Prescriber.DEA == "" {
		c.add(CodeRequired, "careTeam.prescriber.dea",
			"a prescriber of ketamine (Schedule III) needs a DEA number")
	}
}

func (c *checker) clinician(expr string, cl Clinician) {
	c.npi(member(expr, "npi"), cl.NPI, true)
	if cl.DEA != "" && !ValidDEA(cl.DEA) {
		c.add(CodeValue, member(expr, "dea"), "DEA number check digit is wrong")
	}
}

// npi checks an NPI; an absent optional one is fine.
func (c *checker) npi(expr, npi string, required bool) {
	switch {
	case npi == "" && !required:
	case npi == "":
		c.add(CodeRequired, expr, "required field is missing")
	case !ValidNPI(npi):
		c.add(CodeValue, expr, "NPI check digit is wrong")
	}
}

func (c *checker) pharmacy(p *Pharmacy) {
	if p != nil {
		c.npi("pharmacy.npi", p.NPI, false)
	}
}

func (c *checker) consents(consents []Consent) {
	for i, k := range consents {
		if k.RevokedAt != "" {
			c.after(member(element("consents", i), "revokedAt"), k.SignedAt, k.RevokedAt, "signedAt")
		}
	}
}

// unique reports each id that repeats an earlier one in the list at expr and
// returns the index of the first occurrence of every id.
func (c *checker) unique(expr string, ids []string) map[string]int {
	seen := make(map[string]int, len(ids))
	for i, id := range ids {
		if _, dup := seen[id]; dup {
			c.add(CodeBusinessRule, member(element(expr, i), "id"), fmt.Sprintf("repeats the id of %s", element(expr, seen[id])))
			continue
		}
		seen[id] = i
	}
	return seen
}

// prescriptions checks refills and id uniqueness and returns when each
// prescription was written, by id.
func (c *checker) prescriptions(rxs []Prescription) map[string]string {
	ids := make([]string, len(rxs))
	written := make(map[string]string, len(rxs))
	for i, rx := range rxs {
		ids[i] = rx.ID
		written[rx.ID] = rx.WrittenAt
		if rx.Refills > MaxRefills {
			c.add(CodeBusinessRule, member(element("prescriptions", i), "refills"),
				fmt.Sprintf("a Schedule III prescription may be refilled at most %d times", MaxRefills))
		}
	}
	c.unique("prescriptions", ids)
	return written
}
