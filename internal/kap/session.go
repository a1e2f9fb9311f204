package kap

// sessions checks every session and returns the index of each session id.
// rxWritten maps prescription ids to when they were written.
func (c *checker) sessions(sessions []Session, rxWritten map[string]string) map[string]int {
	ids := make([]string, len(sessions))
	for i, s := range sessions {
		ids[i] = s.ID
		expr := element("sessions", i)
		c.after(member(expr, "end"), s.Start, s.End, "start")
		if s.Dose != nil {
			c.dose(expr, s, rxWritten)
		}
		for j, v := range s.Vitals {
			c.vitals(element(member(expr, "vitals"), j), v)
		}
	}
	return c.unique("sessions", ids)
}

// dose checks the dose of session s (at expr): on a dosing session, from a
// prescription of this document written before it, a booster after it, and a
// present chaperone when the patient doses at home over telehealth.
func (c *checker) dose(expr string, s Session, rxWritten map[string]string) {
	d := member(expr, "dose")
	if s.Kind != SessionDosing {
		c.add(CodeBusinessRule, d, "a dose is allowed only on a dosing session")
	}
	if written, ok := rxWritten[s.Dose.PrescriptionID]; !ok {
		c.add(CodeBusinessRule, member(d, "prescriptionId"), "names no prescription in this document")
	} else if w, ok1 := instant(written); ok1 {
		if at, ok2 := instant(s.Dose.AdministeredAt); ok2 && at.Before(w) {
			c.add(CodeBusinessRule, member(d, "administeredAt"), "must not be before the prescription was written")
		}
	}
	if b := s.Dose.Booster; b != nil {
		dose, ok1 := instant(s.Dose.AdministeredAt)
		booster, ok2 := instant(b.AdministeredAt)
		if ok1 && ok2 && booster.Before(dose) {
			c.add(CodeBusinessRule, member(member(d, "booster"), "administeredAt"), "must not be before the dose")
		}
	}
	if s.Modality != ModalityTelehealth {
		return
	}
	switch {
	case s.Chaperone == nil:
		c.add(CodeRequired, member(expr, "chaperone"), "at-home (telehealth) dosing needs a chaperone")
	case !s.Chaperone.Present:
		c.add(CodeBusinessRule, member(member(expr, "chaperone"), "present"), "the chaperone must be present during at-home dosing")
	}
}

// vitals checks that a blood pressure, when both values were taken, has its
// diastolic below its systolic.
func (c *checker) vitals(expr string, v Vitals) {
	if v.Systolic != nil && v.Diastolic != nil && *v.Diastolic >= *v.Systolic {
		c.add(CodeValue, member(expr, "diastolic"), "must be lower than systolic")
	}
}
