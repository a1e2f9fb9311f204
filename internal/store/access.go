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

// PatientAccess is one row of patient_access: an organization that serves
// the patient of an episode, and the patient's data-sharing consent as that
// episode's last accepted document states it.
type PatientAccess struct {
	PatientID    string
	OrgID        string
	SharingFrom  *time.Time // consent signed; nil: no data-sharing consent
	SharingUntil *time.Time // consent revoked; nil: not revoked
}

// accessWrites replaces the patient_access rows of an episode, so that a
// revoked consent in a later document cuts access in the same transaction
// that stores it.
func accessWrites(episodeID string, rows []PatientAccess) []stmt {
	out := []stmt{{"clear patient access", `DELETE FROM patient_access WHERE episode_id = $1`, []any{episodeID}}}
	for _, r := range rows {
		out = append(out, stmt{"write patient access",
			`INSERT INTO patient_access (episode_id, patient_id, org_id, sharing_from, sharing_until)
			VALUES ($1, $2, $3, $4, $5)`,
			[]any{episodeID, r.PatientID, r.OrgID, optMillis(r.SharingFrom), optMillis(r.SharingUntil)}})
	}
	return out
}

// optMillis is the nullable form of millis.
func optMillis(t *time.Time) *int64 {
	if t == nil {
		return nil
	}
	ms := millis(*t)
	return &ms
}
