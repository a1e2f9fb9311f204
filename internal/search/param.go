// Package search defines the FHIR search parameters kapgw supports for each
// resource type and extracts their index values from resource JSON. It is
// pure: the store writes the values it extracts, the FHIR API parses query
// strings with it, and the CapabilityStatement is generated from the same
// table, so what is advertised is exactly what works.
package search

import "slices"

// Kind is a FHIR search parameter type.
type Kind string

// The parameter types kapgw indexes.
const (
	Token     Kind = "token"
	Reference Kind = "reference"
	Date      Kind = "date"
)

// Param is one search parameter of one resource type.
type Param struct {
	Name string
	Kind Kind
	// Paths are dotted element paths into the resource; arrays are walked
	// through at every step.
	Paths []string
	// Target limits a reference parameter to one resource type ("" for any).
	Target string
	// Doc is the CapabilityStatement documentation.
	Doc string
}

// Registry holds the search parameters of every searchable type. It is
// immutable once built.
type Registry struct {
	params map[string][]Param
	types  []string
}

// New returns the registry of the parameters kapgw supports.
func New() *Registry {
	r := &Registry{params: table()}
	for t := range r.params {
		r.types = append(r.types, t)
	}
	slices.Sort(r.types)
	return r
}

// Types lists the searchable resource types in alphabetical order.
func (r *Registry) Types() []string { return slices.Clone(r.types) }

// Params returns the indexed parameters of typ (nil for an unknown type).
// _id and _lastUpdated, which every type has, are not among them.
func (r *Registry) Params(typ string) []Param { return r.params[typ] }

// Param returns one parameter of typ.
func (r *Registry) Param(typ, name string) (Param, bool) {
	for _, p := range r.params[typ] {
		if p.Name == name {
			return p, true
		}
	}
	return Param{}, false
}

// Includes lists the reference parameters of typ: the Type:param values
// _include accepts for typ and _revinclude accepts from it.
func (r *Registry) Includes(typ string) []Param {
	var out []Param
	for _, p := range r.params[typ] {
		if p.Kind == Reference {
			out = append(out, p)
		}
	}
	return out
}

// SortDate names the date parameter _sort=date orders typ by, "" if none.
func (r *Registry) SortDate(typ string) string {
	if _, ok := r.Param(typ, "date"); ok {
		return "date"
	}
	return ""
}

// Shorthands for the table.
func tok(name, doc string, paths ...string) Param {
	return Param{Name: name, Kind: Token, Paths: paths, Doc: doc}
}

func ref(name, target, doc string, paths ...string) Param {
	return Param{Name: name, Kind: Reference, Paths: paths, Target: target, Doc: doc}
}

func date(name, doc string, paths ...string) Param {
	return Param{Name: name, Kind: Date, Paths: paths, Doc: doc}
}

// table is every type's parameters, named and typed as in FHIR R4.
func table() map[string][]Param {
	ident := tok("identifier", "A business identifier (system|value)", "identifier")
	status := tok("status", "The status code", "status")
	subject := ref("subject", "", "Who the resource is about", "subject")
	patient := ref("patient", "Patient", "The patient the resource is about", "subject")
	encounter := ref("encounter", "Encounter", "The encounter the resource belongs to", "encounter")
	return map[string][]Param{
		"Patient":          {ident},
		"Practitioner":     {ident},
		"Organization":     {ident},
		"PractitionerRole": {ident, ref("practitioner", "Practitioner", "The practitioner", "practitioner"), ref("organization", "Organization", "The organization", "organization")},
		"CareTeam":         {ident, status, subject, patient},
		"Condition":        {ident, subject, patient, tok("category", "The category", "category"), tok("code", "The diagnosis code (system|code)", "code"), date("onset-date", "When the condition began", "onsetDateTime")},
		"EpisodeOfCare":    {ident, status, ref("patient", "Patient", "The patient", "patient"), ref("organization", "Organization", "The managing organization", "managingOrganization"), date("date", "The period of care", "period")},
		"CarePlan": {ident, status, subject, patient, tok("category", "The category", "category"), tok("intent", "The intent", "intent"),
			date("date", "The period the plan covers", "period"), ref("care-team", "CareTeam", "The care team", "careTeam")},
		"Encounter": {ident, status, subject, patient, tok("class", "The encounter class", "class"), tok("type", "The encounter type", "type"),
			date("date", "The period of the encounter", "period"), ref("episode-of-care", "EpisodeOfCare", "The episode of care", "episodeOfCare")},
		"Medication": {ident, status, tok("code", "The medication code (system|code)", "code")},
		"MedicationRequest": {ident, status, subject, patient, tok("intent", "The intent", "intent"),
			ref("medication", "Medication", "The medication", "medicationReference"), date("authoredon", "When the request was written", "authoredOn"),
			ref("requester", "", "Who asked for the medication", "requester")},
		"MedicationAdministration": {ident, status, subject, patient, ref("medication", "Medication", "The medication", "medicationReference"),
			ref("context", "Encounter", "The encounter of the administration", "context"), ref("request", "MedicationRequest", "The request", "request"),
			date("effective-time", "When the dose was given", "effectiveDateTime")},
		"Observation": {ident, status, subject, patient, encounter, tok("category", "The category", "category"),
			tok("code", "The observation code (system|code)", "code"), date("date", "When the observation applies", "effectiveDateTime", "effectivePeriod")},
		"MedicationStatement": {ident, status, subject, patient, ref("medication", "Medication", "The medication", "medicationReference"),
			tok("code", "The medication code (system|code)", "medicationCodeableConcept"), date("effective", "When the medication was taken", "effectiveDateTime", "effectivePeriod")},
		"AllergyIntolerance": {ident, ref("patient", "Patient", "The patient", "patient"), tok("clinical-status", "The clinical status", "clinicalStatus"),
			tok("code", "The substance code (system|code)", "code")},
		"AdverseEvent": {ident, ref("subject", "", "Who the event happened to", "subject"), date("date", "When the event occurred", "date")},
		"Provenance": {ref("target", "", "The resources the provenance is about", "target"), ref("agent", "", "Who took part", "agent.who"),
			date("recorded", "When the activity was recorded", "recorded")},
		"CodeSystem": {ident, status, tok("url", "The canonical URL", "url")},
		"MedicationDispense": {ident, status, subject, patient,
			ref("prescription", "MedicationRequest", "The prescription dispensed", "authorizingPrescription")},
		"Task": {ident, status, tok("intent", "The intent", "intent"), ref("focus", "", "What the task is about", "focus"),
			ref("patient", "Patient", "The patient the task is for", "for")},
	}
}
