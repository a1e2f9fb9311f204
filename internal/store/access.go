package store

import "time"

// Access limits what a caller may see of patient data. The zero value sees
// nothing.
//
// A partner (Orgs set) sees a patient's resources only while some episode of
// that patient has one of Orgs in its care team and a current data-sharing
// consent: a row in patient_access with sharing_from <= Now and
// (sharing_until IS NULL OR sharing_until > Now). Resources outside any
// patient compartment (Practitioner, Organization, CodeSystem) are visible to
// every authenticated caller whose scopes allow the type.
type Access struct {
	All  bool      // the clinic platform or an admin: every patient
	Orgs []string  // clinic organization ids the partner serves
	Now  time.Time // the instant consents are evaluated at
}
