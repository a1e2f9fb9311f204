package mappers

import (
	r4 "github.com/samply/golang-fhir-models/fhir-models/fhir"
)

// Retire returns the Episode-scoped resources of prev whose id is absent
// from next, as copies marked removed, for the store to write as new
// versions: status entered-in-error (Condition: verificationStatus
// entered-in-error and no clinicalStatus, as con-5 requires). AdverseEvent
// has no status in R4: its copy is only tagged. Every copy carries the meta
// tag v3-ActStatus "nullified" so removed versions can be found with _tag.
//
// Shared resources are never retired (other episodes may name them), nor is
// Provenance: it records a document that was accepted, which stays true.
func Retire(prev, next []Resource) []Resource {
	keep := make(map[string]bool, len(next))
	for _, r := range next {
		keep[r.Type+"/"+r.ID] = true
	}
	var out []Resource
	for _, r := range prev {
		if r.Scope != Episode || r.Type == "Provenance" || keep[r.Type+"/"+r.ID] {
			continue
		}
		out = append(out, retired(r))
	}
	return out
}

// retired returns a copy of r marked entered-in-error. The copy shares
// unchanged elements with r; only the top-level fields it marks are new.
func retired(r Resource) Resource {
	switch v := r.Value.(type) {
	case *r4.CareTeam:
		c := *v
		c.Status, c.Meta = ptr(r4.CareTeamStatusEnteredInError), nullified(v.Meta)
		r.Value = &c
	case *r4.Condition:
		c := *v
		c.ClinicalStatus = nil
		c.VerificationStatus = ptr(concept(sysCondVer, "entered-in-error", "Entered in Error", ""))
		c.Meta = nullified(v.Meta)
		r.Value = &c
	case *r4.EpisodeOfCare:
		c := *v
		c.Status, c.Meta = r4.EpisodeOfCareStatusEnteredInError, nullified(v.Meta)
		r.Value = &c
	case *r4.CarePlan:
		c := *v
		c.Status, c.Meta = r4.RequestStatusEnteredInError, nullified(v.Meta)
		r.Value = &c
	case *r4.Encounter:
		c := *v
		c.Status, c.Meta = r4.EncounterStatusEnteredInError, nullified(v.Meta)
		r.Value = &c
	default:
		r.Value = retiredMedOrObs(r.Value)
	}
	return r
}

func retiredMedOrObs(value any) any {
	switch v := value.(type) {
	case *r4.Medication:
		c := *v
		c.Status, c.Meta = ptr("entered-in-error"), nullified(v.Meta)
		return &c
	case *r4.MedicationRequest:
		c := *v
		c.Status, c.Meta = "entered-in-error", nullified(v.Meta)
		return &c
	case *r4.MedicationAdministration:
		c := *v
		c.Status, c.Meta = "entered-in-error", nullified(v.Meta)
		return &c
	case *r4.Observation:
		c := *v
		c.Status, c.Meta = r4.ObservationStatusEnteredInError, nullified(v.Meta)
		return &c
	case *r4.AdverseEvent:
		c := *v
		c.Meta = nullified(v.Meta)
		return &c
	}
	return value
}

// nullified returns a new Meta with m's profiles and the nullified tag.
func nullified(m *r4.Meta) *r4.Meta {
	out := &r4.Meta{Tag: []r4.Coding{coding(sysActStatus, "nullified", "nullified")}}
	if m != nil {
		out.Profile = append([]string(nil), m.Profile...)
	}
	return out
}
