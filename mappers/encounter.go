package mappers

import (
	r4 "github.com/samply/golang-fhir-models/fhir-models/fhir"

	"github.com/kapgw/kapgw/internal/kap"
)

// SNOMED CT concepts typing sessions; see docs/mapping.md for their sources.
const (
	snomedPsychiatricEvaluation = "90407005"  // Evaluation of psychiatric state of patient (procedure)
	snomedPsychologicalTherapy  = "405792009" // Formal psychological therapy (regime/therapy)
	snomedPsychiatricMonitoring = "182790007" // Psychiatric monitoring (regime/therapy)
)

// encounters adds one Encounter per session, in document order.
func (b *builder) encounters() {
	for _, s := range b.ep.Sessions {
		id := b.encounterID(s.ID)
		lead, provider := b.prescriber, b.org
		if s.Lead() == roleTherapist {
			lead, provider = b.therapist, b.therapistOrg
		}
		b.add("Encounter", id, Episode, &r4.Encounter{
			Id:              ptr(id),
			Meta:            meta(profEncounter),
			Identifier:      []r4.Identifier{b.ident("session", b.episodeKey(s.ID))},
			Status:          encounterStatus(s.Status),
			Class:           encounterClass(s.Modality),
			Type:            sessionType(s.Kind),
			Subject:         &b.patient,
			EpisodeOfCare:   []r4.Reference{b.episodeCare},
			Participant:     []r4.EncounterParticipant{{Type: primaryPerformer(), Individual: &lead}},
			Period:          period(s.Start, s.End),
			ReasonReference: b.conditions,
			ServiceProvider: &provider,
		})
	}
}

// encounterStatus maps session statuses. R4 Encounter has no no-show: a
// no-show maps to cancelled (the encounter did not take place).
func encounterStatus(s string) r4.EncounterStatus {
	switch s {
	case kap.SessionPlanned:
		return r4.EncounterStatusPlanned
	case kap.SessionInProgress:
		return r4.EncounterStatusInProgress
	case kap.SessionFinished:
		return r4.EncounterStatusFinished
	case kap.SessionCancelled, kap.SessionNoShow:
		return r4.EncounterStatusCancelled
	}
	return r4.EncounterStatusUnknown
}

func encounterClass(modality string) r4.Coding {
	if modality == kap.ModalityTelehealth {
		return coding(sysActCode, "VR", "virtual")
	}
	return coding(sysActCode, "AMB", "ambulatory")
}

func primaryPerformer() []r4.CodeableConcept {
	return []r4.CodeableConcept{concept(sysPartType, "PPRF", "primary performer", "")}
}

// sessionType types a session with SNOMED CT and names the KAP phase in
// text, since preparation and integration share a SNOMED concept.
func sessionType(kind string) []r4.CodeableConcept {
	switch kind {
	case kap.SessionMedicalEvaluation:
		return []r4.CodeableConcept{concept(sysSNOMED, snomedPsychiatricEvaluation, "Evaluation of psychiatric state of patient", "KAP medical evaluation")}
	case kap.SessionPreparation:
		return []r4.CodeableConcept{concept(sysSNOMED, snomedPsychologicalTherapy, "Formal psychological therapy", "KAP preparation session")}
	case kap.SessionDosing:
		return []r4.CodeableConcept{
			concept(sysSNOMED, snomedPsychologicalTherapy, "Formal psychological therapy", "KAP dosing session"),
			concept(sysSNOMED, snomedPsychiatricMonitoring, "Psychiatric monitoring", ""),
		}
	case kap.SessionIntegration:
		return []r4.CodeableConcept{concept(sysSNOMED, snomedPsychologicalTherapy, "Formal psychological therapy", "KAP integration session")}
	case kap.SessionFollowUp:
		return []r4.CodeableConcept{concept(sysSNOMED, snomedPsychiatricMonitoring, "Psychiatric monitoring", "KAP follow-up")}
	}
	return []r4.CodeableConcept{textConcept("KAP session")}
}
