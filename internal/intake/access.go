package intake

import (
	"time"

	"github.com/kapgw/kapgw/internal/kap"
	"github.com/kapgw/kapgw/internal/store"
)

// patientAccess says which organizations of the episode's care team serve
// its patient (the KAP organization ids, which partners are registered
// with), and when the patient's data-sharing consent holds. Without a
// data-sharing consent the rows still name the organizations, with no
// sharing period, so no partner sees the patient.
func patientAccess(ep *kap.Episode, patientID string) []store.PatientAccess {
	from, until := dataSharing(ep.Consents)
	orgs := []string{ep.CareTeam.Organization.ID}
	if o := ep.CareTeam.TherapistOrganization; o != nil && o.ID != ep.CareTeam.Organization.ID {
		orgs = append(orgs, o.ID)
	}
	out := make([]store.PatientAccess, 0, len(orgs))
	for _, org := range orgs {
		out = append(out, store.PatientAccess{PatientID: patientID, OrgID: org, SharingFrom: from, SharingUntil: until})
	}
	return out
}

// dataSharing returns the period of the latest signed data-sharing consent.
// Decode has checked the date-times; one that still does not parse counts
// as absent, which for signedAt means no consent.
func dataSharing(consents []kap.Consent) (from, until *time.Time) {
	for _, c := range consents {
		if c.Kind != kap.ConsentDataSharing {
			continue
		}
		signed, err := time.Parse(time.RFC3339, c.SignedAt)
		if err != nil || (from != nil && !signed.After(*from)) {
			continue
		}
		from, until = &signed, nil
		if revoked, err := time.Parse(time.RFC3339, c.RevokedAt); err == nil {
			until = &revoked
		}
	}
	return from, until
}
