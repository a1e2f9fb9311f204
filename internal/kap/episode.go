// Package kap holds the KAP (ketamine-assisted psychotherapy) domain: the
// episode document the clinic platform sends, and the rules it must satisfy
// before the gateway maps it to FHIR. It is plain Go: no FHIR shapes, no SQL,
// no HTTP.
package kap

// Episode is one patient's course of KAP as the clinic platform records it.
// It mirrors kap-episode.schema.json; every document is a full snapshot, so a
// later Episode with the same ID replaces the earlier one.
//
// Dates and date-times are kept as the strings the clinic sent (validated as
// RFC 3339 full-date / date-time by Decode) so that mapping never loses
// precision or time zone.
type Episode struct {
	ID            string         `json:"id"`
	Status        string         `json:"status"`
	Title         string         `json:"title,omitempty"`
	Period        *Period        `json:"period,omitempty"`
	Patient       Patient        `json:"patient"`
	CareTeam      CareTeam       `json:"careTeam"`
	Pharmacy      *Pharmacy      `json:"pharmacy,omitempty"`
	Indications   []Indication   `json:"indications"`
	Consents      []Consent      `json:"consents,omitempty"`
	Sessions      []Session      `json:"sessions,omitempty"`
	Measures      []Measure      `json:"measures,omitempty"`
	Prescriptions []Prescription `json:"prescriptions,omitempty"`
}

// Episode statuses (the same codes as FHIR EpisodeOfCare / CarePlan use).
const (
	EpisodePlanned        = "planned"
	EpisodeActive         = "active"
	EpisodeOnHold         = "on-hold"
	EpisodeCompleted      = "completed"
	EpisodeCancelled      = "cancelled"
	EpisodeEnteredInError = "entered-in-error"
)

// Period is a start and an optional end, both RFC 3339 date-times.
type Period struct {
	Start string `json:"start,omitempty"`
	End   string `json:"end,omitempty"`
}

// Address is a US postal address.
type Address struct {
	Line       []string `json:"line"`
	City       string   `json:"city"`
	State      string   `json:"state"`
	PostalCode string   `json:"postalCode"`
	Country    string   `json:"country,omitempty"`
}

// Name is a person's name.
type Name struct {
	Given  []string `json:"given"`
	Family string   `json:"family"`
	Prefix string   `json:"prefix,omitempty"`
	Suffix string   `json:"suffix,omitempty"`
}

// Patient is the person receiving care. Everything here except ID is PHI.
type Patient struct {
	ID        string  `json:"id"`
	MRN       string  `json:"mrn,omitempty"`
	Name      Name    `json:"name"`
	BirthDate string  `json:"birthDate"`
	Sex       string  `json:"sex"`
	Address   Address `json:"address"`
	Phone     string  `json:"phone,omitempty"`
	Email     string  `json:"email,omitempty"`
}

// CareTeam is the collaborative-care team: the medical practice and its
// prescriber, and the psychotherapist (possibly of another practice).
type CareTeam struct {
	Organization          Organization  `json:"organization"`
	TherapistOrganization *Organization `json:"therapistOrganization,omitempty"`
	Prescriber            Clinician     `json:"prescriber"`
	Therapist             Clinician     `json:"therapist"`
}

// Organization is a medical or psychotherapy practice.
type Organization struct {
	ID      string   `json:"id"`
	Name    string   `json:"name"`
	NPI     string   `json:"npi,omitempty"`
	Address *Address `json:"address,omitempty"`
	Phone   string   `json:"phone,omitempty"`
}

// Clinician is a prescriber or a therapist.
type Clinician struct {
	ID          string    `json:"id"`
	Name        Name      `json:"name"`
	NPI         string    `json:"npi"`
	DEA         string    `json:"dea,omitempty"`
	Credentials string    `json:"credentials,omitempty"`
	Licenses    []License `json:"licenses,omitempty"`
}

// License is a state license to practise.
type License struct {
	State   string `json:"state"`
	Number  string `json:"number"`
	Expires string `json:"expires,omitempty"`
}

// Pharmacy is the compounding pharmacy that fills the episode's prescriptions.
type Pharmacy struct {
	ID      string   `json:"id"`
	Name    string   `json:"name"`
	NCPDPID string   `json:"ncpdpId"`
	NPI     string   `json:"npi,omitempty"`
	Address *Address `json:"address,omitempty"`
	Phone   string   `json:"phone,omitempty"`
	ShipsTo []string `json:"shipsTo,omitempty"`
}

// Indication is a diagnosis the course of KAP treats (ICD-10-CM).
type Indication struct {
	System  string `json:"system,omitempty"`
	Code    string `json:"code"`
	Display string `json:"display,omitempty"`
	Onset   string `json:"onset,omitempty"`
}

// Consent kinds.
const (
	ConsentTreatment   = "treatment"
	ConsentTelehealth  = "telehealth"
	ConsentHomeDosing  = "home-dosing"
	ConsentDataSharing = "data-sharing"
)

// Consent is a signed (and possibly revoked) patient consent.
type Consent struct {
	Kind      string `json:"kind"`
	SignedAt  string `json:"signedAt"`
	RevokedAt string `json:"revokedAt,omitempty"`
}

// Session kinds.
const (
	SessionMedicalEvaluation = "medical-evaluation"
	SessionPreparation       = "preparation"
	SessionDosing            = "dosing"
	SessionIntegration       = "integration"
	SessionFollowUp          = "follow-up"
)

// Session statuses.
const (
	SessionPlanned    = "planned"
	SessionInProgress = "in-progress"
	SessionFinished   = "finished"
	SessionCancelled  = "cancelled"
	SessionNoShow     = "no-show"
)

// Session modalities.
const (
	ModalityInPerson   = "in-person"
	ModalityTelehealth = "telehealth"
)

// Session is one contact of the course: medical evaluation, preparation,
// dosing, integration or follow-up.
type Session struct {
	ID                   string         `json:"id"`
	Kind                 string         `json:"kind"`
	Status               string         `json:"status"`
	Modality             string         `json:"modality"`
	Start                string         `json:"start"`
	End                  string         `json:"end,omitempty"`
	Clinician            string         `json:"clinician,omitempty"`
	PatientLocationState string         `json:"patientLocationState,omitempty"`
	Dose                 *Dose          `json:"dose,omitempty"`
	Chaperone            *Chaperone     `json:"chaperone,omitempty"`
	Vitals               []Vitals       `json:"vitals,omitempty"`
	AdverseEvents        []AdverseEvent `json:"adverseEvents,omitempty"`
}

// Lead returns who led the session: "prescriber" or "therapist", applying the
// schema's defaults when Clinician is empty.
func (s Session) Lead() string {
	if s.Clinician != "" {
		return s.Clinician
	}
	if s.Kind == SessionMedicalEvaluation || s.Kind == SessionFollowUp {
		return "prescriber"
	}
	return "therapist"
}

// Dose is the ketamine given in a dosing session.
type Dose struct {
	PrescriptionID string   `json:"prescriptionId"`
	MG             float64  `json:"mg"`
	Units          int      `json:"units,omitempty"`
	Route          string   `json:"route"`
	AdministeredAt string   `json:"administeredAt"`
	Booster        *Booster `json:"booster,omitempty"`
}

// Booster is a second, smaller dose given during the same session.
type Booster struct {
	MG             float64 `json:"mg"`
	Units          int     `json:"units,omitempty"`
	AdministeredAt string  `json:"administeredAt"`
}

// Chaperone is the person who stays near the patient during at-home dosing.
type Chaperone struct {
	Name         string `json:"name"`
	Relationship string `json:"relationship,omitempty"`
	Phone        string `json:"phone,omitempty"`
	Present      bool   `json:"present"`
}

// Vitals is one set of vital signs taken during a session. A nil field was
// not measured.
type Vitals struct {
	TakenAt   string `json:"takenAt"`
	Phase     string `json:"phase"`
	Systolic  *int   `json:"systolic,omitempty"`
	Diastolic *int   `json:"diastolic,omitempty"`
	HeartRate *int   `json:"heartRate,omitempty"`
	SpO2      *int   `json:"spo2,omitempty"`
}

// AdverseEvent is something harmful or unexpected observed in a session.
type AdverseEvent struct {
	Description string `json:"description"`
	Severity    string `json:"severity"`
	Onset       string `json:"onset,omitempty"`
}

// Instruments.
const (
	InstrumentPHQ9  = "PHQ-9"
	InstrumentGAD7  = "GAD-7"
	InstrumentPCL5  = "PCL-5"
	InstrumentMADRS = "MADRS"
	InstrumentCADSS = "CADSS"
)

// Measure is one outcome-measure score.
type Measure struct {
	ID         string `json:"id"`
	Instrument string `json:"instrument"`
	Score      int    `json:"score"`
	Items      []int  `json:"items,omitempty"`
	TakenAt    string `json:"takenAt"`
	SessionID  string `json:"sessionId,omitempty"`
}

// Prescription statuses (the same codes as FHIR MedicationRequest uses).
const (
	RxDraft     = "draft"
	RxActive    = "active"
	RxOnHold    = "on-hold"
	RxCancelled = "cancelled"
	RxCompleted = "completed"
	RxStopped   = "stopped"
)

// Prescription is a ketamine prescription for a compounded formulation.
type Prescription struct {
	ID                  string      `json:"id"`
	Status              string      `json:"status"`
	WrittenAt           string      `json:"writtenAt"`
	Formulation         Formulation `json:"formulation"`
	Quantity            int         `json:"quantity"`
	DaysSupply          int         `json:"daysSupply"`
	Refills             int         `json:"refills"`
	Sig                 string      `json:"sig"`
	SubstitutionAllowed bool        `json:"substitutionAllowed,omitempty"`
	ShipTo              *Address    `json:"shipTo,omitempty"`
	NoteToPharmacist    string      `json:"noteToPharmacist,omitempty"`
}

// Formulation is the compounded product: ketamine strength per unit and form.
type Formulation struct {
	KetamineMGPerUnit float64 `json:"ketamineMgPerUnit"`
	Form              string  `json:"form"`
	Base              string  `json:"base,omitempty"`
	Flavor            string  `json:"flavor,omitempty"`
	PharmacyProductID string  `json:"pharmacyProductId,omitempty"`
}
