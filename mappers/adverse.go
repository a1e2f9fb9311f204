package mappers

import (
	"strconv"

	r4 "github.com/samply/golang-fhir-models/fhir-models/fhir"
)

// adverseEvents adds one AdverseEvent per event recorded in a session. The
// description is clinical free text and stays in event.text only.
func (b *builder) adverseEvents() {
	for _, s := range b.ep.Sessions {
		for i, ae := range s.AdverseEvents {
			idx := strconv.Itoa(i)
			id := ID("AdverseEvent", b.ep.ID, s.ID, idx)
			date := ae.Onset
			if date == "" {
				date = s.Start
			}
			b.add("AdverseEvent", id, Episode, &r4.AdverseEvent{
				Id:         ptr(id),
				Identifier: ptr(b.ident("adverse-event", b.episodeKey(s.ID, "adverse-event", idx))),
				Actuality:  r4.AdverseEventActualityActual,
				Event:      ptr(textConcept(ae.Description)),
				Subject:    b.patient,
				Encounter:  b.encounterRef(s.ID),
				Date:       ptr(date),
				Severity:   ptr(concept(sysAESeverity, ae.Severity, severityDisplay(ae.Severity), "")),
			})
		}
	}
}

func severityDisplay(s string) string {
	switch s {
	case "mild":
		return "Mild"
	case "moderate":
		return "Moderate"
	case "severe":
		return "Severe"
	}
	return ""
}
