package mappers

import (
	r4 "github.com/samply/golang-fhir-models/fhir-models/fhir"

	"github.com/kapgw/kapgw/internal/kap"
)

// Roles a clinician plays in a KAP care team.
const (
	rolePrescriber = "prescriber"
	roleTherapist  = "therapist"
)

// parties adds the Shared resources and the episode's CareTeam.
func (b *builder) parties() {
	ct := b.ep.CareTeam
	b.add("Patient", refID(b.patient), Shared, b.patientResource())
	b.add("Organization", refID(b.org), Shared, b.organization(ct.Organization))
	if ct.TherapistOrganization != nil && refID(b.therapistOrg) != refID(b.org) {
		b.add("Organization", refID(b.therapistOrg), Shared, b.organization(*ct.TherapistOrganization))
	}
	if b.pharmacy != nil {
		b.add("Organization", refID(*b.pharmacy), Shared, b.pharmacyResource(*b.ep.Pharmacy))
	}
	b.add("Practitioner", refID(b.prescriber), Shared, b.practitioner(ct.Prescriber))
	if refID(b.therapist) != refID(b.prescriber) {
		b.add("Practitioner", refID(b.therapist), Shared, b.practitioner(ct.Therapist))
	}
	b.role(rolePrescriber, ct.Prescriber.ID, ct.Organization.ID, b.prescriber, b.org)
	therapistOrgID := ct.Organization.ID
	if ct.TherapistOrganization != nil {
		therapistOrgID = ct.TherapistOrganization.ID
	}
	b.role(roleTherapist, ct.Therapist.ID, therapistOrgID, b.therapist, b.therapistOrg)
	b.careTeamResource()
}

// refID is the id part of a relative reference built by ref.
func refID(r r4.Reference) string {
	s := *r.Reference
	for i := 0; i < len(s); i++ {
		if s[i] == '/' {
			return s[i+1:]
		}
	}
	return s
}

func (b *builder) patientResource() *r4.Patient {
	p := b.ep.Patient
	res := &r4.Patient{
		Id:         ptr(refID(b.patient)),
		Meta:       meta(profPatient),
		Identifier: []r4.Identifier{b.ident("patient", p.ID)},
		Active:     ptr(true),
		Name:       []r4.HumanName{humanName(p.Name)},
		Gender:     gender(p.Sex),
		BirthDate:  optional(p.BirthDate),
		Address:    []r4.Address{address(p.Address, r4.AddressUseHome)},
	}
	if p.MRN != "" {
		mrn := b.ident("mrn", p.MRN)
		mrn.Type = ptr(concept(sysV2IDType, "MR", "Medical record number", ""))
		res.Identifier = append(res.Identifier, mrn)
	}
	if p.Phone != "" {
		res.Telecom = append(res.Telecom, r4.ContactPoint{System: ptr(r4.ContactPointSystemPhone), Value: ptr(p.Phone)})
	}
	if p.Email != "" {
		res.Telecom = append(res.Telecom, r4.ContactPoint{System: ptr(r4.ContactPointSystemEmail), Value: ptr(p.Email)})
	}
	return res
}

func gender(sex string) *r4.AdministrativeGender {
	switch sex {
	case "female":
		return ptr(r4.AdministrativeGenderFemale)
	case "male":
		return ptr(r4.AdministrativeGenderMale)
	case "other":
		return ptr(r4.AdministrativeGenderOther)
	}
	return ptr(r4.AdministrativeGenderUnknown)
}

func humanName(n kap.Name) r4.HumanName {
	h := r4.HumanName{Use: ptr(r4.NameUseOfficial), Family: optional(n.Family), Given: n.Given}
	if n.Prefix != "" {
		h.Prefix = []string{n.Prefix}
	}
	if n.Suffix != "" {
		h.Suffix = []string{n.Suffix}
	}
	return h
}

func address(a kap.Address, use r4.AddressUse) r4.Address {
	country := a.Country
	if country == "" {
		country = "US"
	}
	return r4.Address{
		Use:        ptr(use),
		Line:       a.Line,
		City:       optional(a.City),
		State:      optional(a.State),
		PostalCode: optional(a.PostalCode),
		Country:    ptr(country),
	}
}

func phone(v string) []r4.ContactPoint {
	if v == "" {
		return nil
	}
	return []r4.ContactPoint{{System: ptr(r4.ContactPointSystemPhone), Value: ptr(v), Use: ptr(r4.ContactPointUseWork)}}
}

func (b *builder) organization(o kap.Organization) *r4.Organization {
	res := &r4.Organization{
		Id:         ptr(orgID(o.ID)),
		Meta:       meta(profOrganization),
		Identifier: []r4.Identifier{b.ident("organization", o.ID)},
		Active:     ptr(true),
		Name:       optional(o.Name),
		Telecom:    phone(o.Phone),
	}
	if o.NPI != "" {
		res.Identifier = append(res.Identifier, r4.Identifier{System: ptr(sysNPI), Value: ptr(o.NPI)})
	}
	if o.Address != nil {
		res.Address = []r4.Address{address(*o.Address, r4.AddressUseWork)}
	}
	return res
}

func (b *builder) pharmacyResource(p kap.Pharmacy) *r4.Organization {
	res := &r4.Organization{
		Id:     ptr(pharmacyID(p.ID)),
		Meta:   meta(profOrganization),
		Active: ptr(true),
		Identifier: []r4.Identifier{
			b.ident("pharmacy", p.ID),
			{System: ptr(sysNCPDP), Value: ptr(p.NCPDPID)},
		},
		Name:    optional(p.Name),
		Telecom: phone(p.Phone),
	}
	if p.NPI != "" {
		res.Identifier = append(res.Identifier, r4.Identifier{System: ptr(sysNPI), Value: ptr(p.NPI)})
	}
	if p.Address != nil {
		res.Address = []r4.Address{address(*p.Address, r4.AddressUseWork)}
	}
	return res
}

func (b *builder) practitioner(c kap.Clinician) *r4.Practitioner {
	res := &r4.Practitioner{
		Id:   ptr(ID("Practitioner", c.ID)),
		Meta: meta(profPractitioner),
		Identifier: []r4.Identifier{
			b.ident("clinician", c.ID),
			{System: ptr(sysNPI), Value: ptr(c.NPI)},
		},
		Active: ptr(true),
		Name:   []r4.HumanName{humanName(c.Name)},
	}
	if c.DEA != "" {
		res.Identifier = append(res.Identifier, r4.Identifier{
			Type:   ptr(concept(sysV2IDType, "DEA", "Drug Enforcement Administration registration number", "")),
			System: ptr(sysDEA),
			Value:  ptr(c.DEA),
		})
	}
	for _, l := range c.Licenses {
		q := r4.PractitionerQualification{
			Identifier: []r4.Identifier{b.ident("state-license/"+l.State, l.Number)},
			Code:       textConcept(qualificationText(c.Credentials, l.State)),
		}
		if l.Expires != "" {
			q.Period = &r4.Period{End: ptr(l.Expires)}
		}
		res.Qualification = append(res.Qualification, q)
	}
	return res
}

func qualificationText(credentials, state string) string {
	if credentials == "" {
		return state + " license"
	}
	return credentials + ", " + state + " license"
}

// role adds the PractitionerRole of a clinician in an organization.
func (b *builder) role(role, clinicianID, orgClinicID string, who, org r4.Reference) {
	id := ID("PractitionerRole", role, clinicianID, orgClinicID)
	text := "KAP prescriber"
	if role == roleTherapist {
		text = "KAP psychotherapist"
	}
	b.add("PractitionerRole", id, Shared, &r4.PractitionerRole{
		Id:           ptr(id),
		Identifier:   []r4.Identifier{b.ident("practitioner-role", role+"/"+clinicianID+"/"+orgClinicID)},
		Active:       ptr(true),
		Practitioner: &who,
		Organization: &org,
		Code:         []r4.CodeableConcept{textConcept(text)},
	})
}

func (b *builder) careTeamResource() {
	id := refID(b.careTeam)
	b.add("CareTeam", id, Episode, &r4.CareTeam{
		Id:         ptr(id),
		Identifier: []r4.Identifier{b.ident("care-team", b.ep.ID)},
		Status:     ptr(careTeamStatus(b.ep.Status)),
		Name:       ptr("KAP care team"),
		Subject:    &b.patient,
		Period:     b.episodePeriod(),
		Participant: []r4.CareTeamParticipant{
			{Role: []r4.CodeableConcept{textConcept("KAP prescriber")}, Member: &b.prescriber, OnBehalfOf: &b.org},
			{Role: []r4.CodeableConcept{textConcept("KAP psychotherapist")}, Member: &b.therapist, OnBehalfOf: &b.therapistOrg},
		},
		ManagingOrganization: []r4.Reference{b.org},
	})
}

func (b *builder) episodePeriod() *r4.Period {
	if b.ep.Period == nil {
		return nil
	}
	return period(b.ep.Period.Start, b.ep.Period.End)
}

func careTeamStatus(s string) r4.CareTeamStatus {
	switch s {
	case kap.EpisodePlanned:
		return r4.CareTeamStatusProposed
	case kap.EpisodeOnHold:
		return r4.CareTeamStatusSuspended
	case kap.EpisodeCompleted, kap.EpisodeCancelled:
		return r4.CareTeamStatusInactive
	case kap.EpisodeEnteredInError:
		return r4.CareTeamStatusEnteredInError
	}
	return r4.CareTeamStatusActive
}
