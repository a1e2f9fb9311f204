package rules

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/kapgw/kapgw/internal/kap"
)

// Severities of a finding.
const (
	// Block means the prescription must not be sent.
	Block = "block"
	// Warn means the prescriber must look, but sending goes ahead.
	Warn = "warn"
)

// Rule codes. Every code is tested in both directions.
const (
	CodePrescriberDEA     = "prescriber-dea"
	CodeLicenseState      = "prescriber-license-state"
	CodeLicenseExpired    = "prescriber-license-expired"
	CodeMedicalEvaluation = "medical-evaluation"
	CodeTelehealthEnded   = "telehealth-prescribing-ended"
	CodeConsentTreatment  = "consent-treatment"
	CodeConsentTelehealth = "consent-telehealth"
	CodeConsentHomeDosing = "consent-home-dosing"
	CodePatientAge        = "patient-age"
	CodeRefills           = "refills-limit"
	CodeFillWindow        = "fill-window"
	CodeSupply            = "supply-inconsistent"
	CodeDuplicateActive   = "duplicate-active"
	CodePharmacyShips     = "pharmacy-ships"
	CodeInteractionPrefix = "interaction-"
)

// Finding is one rule a prescription breaks.
type Finding struct {
	Code     string
	Severity string
	// Expression names the field of the episode document at fault, such as
	// "prescriptions[0].refills".
	Expression string
	// Message explains the rule without echoing document values.
	Message string
	// RuleSet is the Version of the set that produced the finding.
	RuleSet string
}

// Medication is a medication the patient takes according to a partner EHR.
type Medication struct {
	// RxNorm is the ingredient or product code, when known.
	RxNorm string
	// Name is the name as the partner recorded it.
	Name string
}

// Input is one prescription to check.
type Input struct {
	Episode *kap.Episode
	// Prescription is the index of the prescription in Episode.Prescriptions.
	Prescription int
	// At is when the prescription would be sent.
	At time.Time
	// OtherActive is the number of other active ketamine prescriptions of
	// the same patient the gateway holds outside this episode.
	OtherActive int
	// Medications are the patient's medications from partner EHRs.
	Medications []Medication
}

// Check evaluates every rule of s on in and returns the findings, blocks
// first, in a stable order. An empty result means the prescription may be
// sent.
func (s *Set) Check(in Input) []Finding {
	c := &checker{set: s, in: in, ep: in.Episode, rx: in.Episode.Prescriptions[in.Prescription]}
	c.rxExpr = "prescriptions[" + strconv.Itoa(in.Prescription) + "]"
	c.written, _ = time.Parse(time.RFC3339, c.rx.WrittenAt)
	c.prescriber()
	c.evaluation()
	c.consents()
	c.age()
	c.schedule()
	c.supply()
	c.duplicate()
	c.pharmacy()
	c.interactions()
	slices.SortStableFunc(c.out, func(a, b Finding) int {
		return strings.Compare(a.Severity, b.Severity) // "block" < "warn"
	})
	return c.out
}

// Blocked reports whether any finding blocks sending.
func Blocked(fs []Finding) bool {
	return slices.ContainsFunc(fs, func(f Finding) bool { return f.Severity == Block })
}

type checker struct {
	set     *Set
	in      Input
	ep      *kap.Episode
	rx      kap.Prescription
	rxExpr  string
	written time.Time
	out     []Finding
}

func (c *checker) add(sev, code, expr, msg string) {
	c.out = append(c.out, Finding{Code: code, Severity: sev, Expression: expr, Message: msg, RuleSet: c.set.Version})
}

func (c *checker) prescriber() {
	p := c.ep.CareTeam.Prescriber
	if !kap.ValidDEA(p.DEA) {
		c.add(Block, CodePrescriberDEA, "careTeam.prescriber.dea", "the prescriber has no DEA number with a valid check digit")
	}
	state := c.licenseState()
	i := slices.IndexFunc(p.Licenses, func(l kap.License) bool { return l.State == state })
	if i < 0 {
		c.add(Block, CodeLicenseState, "careTeam.prescriber.licenses", "the prescriber has no license in the state the patient was in at the medical evaluation")
		return
	}
	if exp, err := time.Parse(day, p.Licenses[i].Expires); err == nil && !c.in.At.Before(exp.AddDate(0, 0, 1)) {
		c.add(Block, CodeLicenseExpired, "careTeam.prescriber.licenses["+strconv.Itoa(i)+"].expires", "the prescriber's license in the patient's state has expired")
	}
}

// licenseState is the state the prescriber must be licensed in: where the
// patient was at a telehealth medical evaluation, else where they live.
func (c *checker) licenseState() string {
	if ev, _ := c.lastEvaluation(); ev != nil && ev.Modality == kap.ModalityTelehealth && ev.PatientLocationState != "" {
		return ev.PatientLocationState
	}
	return c.ep.Patient.Address.State
}

// lastEvaluation returns the latest medical evaluation finished before
// writtenAt, and whether any such evaluation was in person.
func (c *checker) lastEvaluation() (*kap.Session, bool) {
	var last *kap.Session
	var lastEnd time.Time
	inPerson := false
	for i, s := range c.ep.Sessions {
		if s.Kind != kap.SessionMedicalEvaluation || s.Status != kap.SessionFinished {
			continue
		}
		end, err := time.Parse(time.RFC3339, cmpOr(s.End, s.Start))
		if err != nil || !end.Before(c.written) {
			continue
		}
		inPerson = inPerson || s.Modality == kap.ModalityInPerson
		if last == nil || end.After(lastEnd) {
			last, lastEnd = &c.ep.Sessions[i], end
		}
	}
	return last, inPerson
}

func (c *checker) evaluation() {
	ev, inPerson := c.lastEvaluation()
	if ev == nil {
		c.add(Block, CodeMedicalEvaluation, c.rxExpr+".writtenAt", "no medical evaluation finished before the prescription was written")
		return
	}
	if !inPerson && !c.in.At.Before(c.set.teleEnd) {
		c.add(Block, CodeTelehealthEnded, "sessions", "no in-person medical evaluation, and telehealth prescribing of controlled substances has ended under the rule set in force")
	}
}

func (c *checker) consents() {
	c.consent(kap.ConsentTreatment, CodeConsentTreatment)
	if c.anySession(func(s kap.Session) bool { return s.Modality == kap.ModalityTelehealth }) {
		c.consent(kap.ConsentTelehealth, CodeConsentTelehealth)
	}
	if c.anySession(func(s kap.Session) bool { return s.Kind == kap.SessionDosing && s.Modality == kap.ModalityTelehealth }) {
		c.consent(kap.ConsentHomeDosing, CodeConsentHomeDosing)
	}
}

func (c *checker) anySession(f func(kap.Session) bool) bool {
	return slices.ContainsFunc(c.ep.Sessions, func(s kap.Session) bool {
		return s.Status != kap.SessionCancelled && f(s)
	})
}

// consent requires a consent of kind signed by At and not revoked by then.
func (c *checker) consent(kind, code string) {
	for _, k := range c.ep.Consents {
		signed, err := time.Parse(time.RFC3339, k.SignedAt)
		if k.Kind != kind || err != nil || signed.After(c.in.At) {
			continue
		}
		if revoked, err := time.Parse(time.RFC3339, k.RevokedAt); err == nil && !revoked.After(c.in.At) {
			continue
		}
		return
	}
	c.add(Block, code, "consents", "the "+kind+" consent is not signed, or was revoked")
}

func (c *checker) age() {
	born, err := time.Parse(day, c.ep.Patient.BirthDate)
	if err != nil || born.AddDate(c.set.MinPatientAgeYears, 0, 0).After(c.written) {
		c.add(Block, CodePatientAge, "patient.birthDate", fmt.Sprintf("the patient is younger than %d when the prescription is written", c.set.MinPatientAgeYears))
	}
}

func (c *checker) schedule() {
	if c.rx.Refills > c.set.MaxRefills {
		c.add(Block, CodeRefills, c.rxExpr+".refills", fmt.Sprintf("a Schedule III prescription allows at most %d refills", c.set.MaxRefills))
	}
	if !c.in.At.Before(c.written.AddDate(0, c.set.FillWindowMonths, 0)) {
		c.add(Block, CodeFillWindow, c.rxExpr+".writtenAt", fmt.Sprintf("a Schedule III prescription cannot be filled more than %d months after it was written", c.set.FillWindowMonths))
	}
}

func (c *checker) duplicate() {
	n := c.in.OtherActive
	for i, o := range c.ep.Prescriptions {
		if i != c.in.Prescription && o.Status == kap.RxActive {
			n++
		}
	}
	if n > 0 {
		c.add(Block, CodeDuplicateActive, c.rxExpr+".status", "the patient has another active ketamine prescription")
	}
}

func (c *checker) pharmacy() {
	state := c.ep.Patient.Address.State
	expr := "patient.address.state"
	if c.rx.ShipTo != nil {
		state, expr = c.rx.ShipTo.State, c.rxExpr+".shipTo.state"
	}
	if c.ep.Pharmacy == nil || !slices.Contains(c.ep.Pharmacy.ShipsTo, state) {
		c.add(Block, CodePharmacyShips, expr, "the pharmacy does not ship to the patient's state")
	}
}

func (c *checker) interactions() {
	for _, ia := range c.set.Interactions {
		if slices.ContainsFunc(c.in.Medications, ia.matches) {
			c.add(Warn, CodeInteractionPrefix+ia.Class, "", ia.Message)
		}
	}
}

func (ia Interaction) matches(m Medication) bool {
	if m.RxNorm != "" && slices.Contains(ia.RxNorm, m.RxNorm) {
		return true
	}
	name := strings.ToLower(m.Name)
	return slices.ContainsFunc(ia.Names, func(n string) bool { return name != "" && strings.Contains(name, n) })
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
