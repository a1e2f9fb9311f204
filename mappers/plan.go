package mappers

import (
	"html"
	"strconv"
	"strings"

	r4 "github.com/samply/golang-fhir-models/fhir-models/fhir"

	"github.com/kapgw/kapgw/internal/kap"
)

// plan adds the Conditions, the EpisodeOfCare and the CarePlan.
func (b *builder) plan() {
	b.conditionResources()
	b.episodeOfCare()
	b.carePlan()
}

// conditionResources adds one Condition per distinct indication code; a
// repeated code would otherwise map to the same id twice.
func (b *builder) conditionResources() {
	seen := make(map[string]bool, len(b.ep.Indications))
	for _, ind := range b.ep.Indications {
		if seen[ind.Code] {
			continue
		}
		seen[ind.Code] = true
		id := ID("Condition", b.ep.ID, ind.Code)
		b.conditions = append(b.conditions, ref("Condition", id))
		b.add("Condition", id, Episode, &r4.Condition{
			Id:                 ptr(id),
			Meta:               meta(profCondition),
			Identifier:         []r4.Identifier{b.ident("indication", b.episodeKey(ind.Code))},
			ClinicalStatus:     ptr(concept(sysCondClin, "active", "Active", "")),
			VerificationStatus: ptr(concept(sysCondVer, "confirmed", "Confirmed", "")),
			Category:           []r4.CodeableConcept{concept(sysCondCat, "problem-list-item", "Problem List Item", "")},
			Code:               ptr(concept(sysICD10CM, ind.Code, ind.Display, "")),
			Subject:            b.patient,
			OnsetDateTime:      optional(ind.Onset),
		})
	}
}

func (b *builder) episodeOfCare() {
	id := refID(b.episodeCare)
	res := &r4.EpisodeOfCare{
		Id:                   ptr(id),
		Identifier:           []r4.Identifier{b.ident("episode", b.ep.ID)},
		Status:               episodeStatus(b.ep.Status),
		Type:                 []r4.CodeableConcept{textConcept("Ketamine-assisted psychotherapy")},
		Patient:              b.patient,
		ManagingOrganization: &b.org,
		Period:               b.episodePeriod(),
		CareManager:          &b.prescriber,
		Team:                 []r4.Reference{b.careTeam},
	}
	for i, c := range b.conditions {
		res.Diagnosis = append(res.Diagnosis, r4.EpisodeOfCareDiagnosis{Condition: c, Rank: ptr(i + 1)})
	}
	b.add("EpisodeOfCare", id, Episode, res)
}

func episodeStatus(s string) r4.EpisodeOfCareStatus {
	switch s {
	case kap.EpisodePlanned:
		return r4.EpisodeOfCareStatusPlanned
	case kap.EpisodeOnHold:
		return r4.EpisodeOfCareStatusOnhold
	case kap.EpisodeCompleted:
		return r4.EpisodeOfCareStatusFinished
	case kap.EpisodeCancelled:
		return r4.EpisodeOfCareStatusCancelled
	case kap.EpisodeEnteredInError:
		return r4.EpisodeOfCareStatusEnteredInError
	}
	return r4.EpisodeOfCareStatusActive
}

func carePlanStatus(s string) r4.RequestStatus {
	switch s {
	case kap.EpisodePlanned:
		return r4.RequestStatusDraft
	case kap.EpisodeOnHold:
		return r4.RequestStatusOnHold
	case kap.EpisodeCompleted:
		return r4.RequestStatusCompleted
	case kap.EpisodeCancelled:
		return r4.RequestStatusRevoked
	case kap.EpisodeEnteredInError:
		return r4.RequestStatusEnteredInError
	}
	return r4.RequestStatusActive
}

const defaultTitle = "Ketamine-assisted psychotherapy"

// carePlan adds the episode's CarePlan: one activity per session, then
// one per prescription (activity.reference to its MedicationRequest).
func (b *builder) carePlan() {
	ep := b.ep
	id := ID("CarePlan", ep.ID)
	title := ep.Title
	if title == "" {
		title = defaultTitle
	}
	res := &r4.CarePlan{
		Id:         ptr(id),
		Meta:       meta(profCarePlan),
		Text:       &r4.Narrative{Status: r4.NarrativeStatusGenerated, Div: b.carePlanNarrative(title)},
		Identifier: []r4.Identifier{b.ident("care-plan", ep.ID)},
		Status:     carePlanStatus(ep.Status),
		Intent:     r4.CarePlanIntentPlan,
		Category:   []r4.CodeableConcept{concept(sysCPCategory, "assess-plan", "Assessment and Plan of Treatment", "")},
		Title:      ptr(title),
		Subject:    b.patient,
		Period:     b.episodePeriod(),
		Author:     &b.prescriber,
		CareTeam:   []r4.Reference{b.careTeam},
		Addresses:  b.conditions,
		Activity:   make([]r4.CarePlanActivity, 0, len(ep.Sessions)+len(ep.Prescriptions)),
	}
	for _, s := range ep.Sessions {
		res.Activity = append(res.Activity, b.sessionActivity(s))
	}
	for _, rx := range ep.Prescriptions {
		res.Activity = append(res.Activity, r4.CarePlanActivity{Reference: refp("MedicationRequest", b.requestID(rx.ID))})
	}
	if len(res.Activity) == 0 {
		res.Activity = nil
	}
	b.add("CarePlan", id, Episode, res)
}

// sessionActivity plans a session. R4 activity.reference cannot name an
// Encounter (it names requests), so the session is planned in
// activity.detail and its Encounter is the activity's outcomeReference.
func (b *builder) sessionActivity(s kap.Session) r4.CarePlanActivity {
	lead := b.prescriber
	if s.Lead() == roleTherapist {
		lead = b.therapist
	}
	return r4.CarePlanActivity{
		OutcomeReference: []r4.Reference{*b.encounterRef(s.ID)},
		Detail: &r4.CarePlanActivityDetail{
			Kind:            ptr(r4.CarePlanActivityKindAppointment),
			Code:            &sessionType(s.Kind)[0],
			Status:          activityStatus(s.Status),
			ScheduledPeriod: period(s.Start, s.End),
			Performer:       []r4.Reference{lead},
		},
	}
}

// activityStatus maps a session status to the planned activity's status; a
// no-show is a cancelled activity, as it is a cancelled Encounter.
func activityStatus(s string) r4.CarePlanActivityStatus {
	switch s {
	case kap.SessionPlanned:
		return r4.CarePlanActivityStatusScheduled
	case kap.SessionInProgress:
		return r4.CarePlanActivityStatusInProgress
	case kap.SessionFinished:
		return r4.CarePlanActivityStatusCompleted
	case kap.SessionCancelled, kap.SessionNoShow:
		return r4.CarePlanActivityStatusCancelled
	}
	return r4.CarePlanActivityStatusUnknown
}

// carePlanNarrative summarises the plan without any patient detail: the
// title, the status and counts of sessions by kind and of prescriptions.
func (b *builder) carePlanNarrative(title string) string {
	var sb strings.Builder
	sb.Grow(256)
	sb.WriteString(`<div xmlns="http://www.w3.org/1999/xhtml"><p>`)
	sb.WriteString(html.EscapeString(title))
	sb.WriteString(" (")
	sb.WriteString(b.ep.Status)
	sb.WriteString(")</p><ul>")
	for _, kind := range []string{kap.SessionMedicalEvaluation, kap.SessionPreparation, kap.SessionDosing, kap.SessionIntegration, kap.SessionFollowUp} {
		n, done := 0, 0
		for _, s := range b.ep.Sessions {
			if s.Kind == kind {
				n++
				if s.Status == kap.SessionFinished {
					done++
				}
			}
		}
		if n == 0 {
			continue
		}
		sb.WriteString("<li>")
		sb.WriteString(kind)
		sb.WriteString(" sessions: ")
		sb.WriteString(strconv.Itoa(n))
		sb.WriteString(" (")
		sb.WriteString(strconv.Itoa(done))
		sb.WriteString(" finished)</li>")
	}
	sb.WriteString("<li>prescriptions: ")
	sb.WriteString(strconv.Itoa(len(b.ep.Prescriptions)))
	sb.WriteString("</li></ul></div>")
	return sb.String()
}
