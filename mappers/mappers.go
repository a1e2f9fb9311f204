// Package mappers turns a KAP episode document into FHIR R4 resources. It is
// pure: values in, values out, no I/O, no context, no logging, and the same
// document with the same Options always yields the same resources in the same
// order, so stored versions only change when the document does.
//
// docs/mapping.md describes every element, code and identifier system used.
package mappers

import (
	"errors"
	"fmt"
	"strings"
	"time"

	r4 "github.com/samply/golang-fhir-models/fhir-models/fhir"

	"github.com/kapgw/kapgw/internal/kap"
)

// Scope says who owns a resource.
type Scope int

const (
	// Shared resources (Patient, Practitioner, PractitionerRole,
	// Organization) are keyed by the clinic's id alone: the same clinic id
	// maps to the same resource in every episode that names it.
	Shared Scope = iota
	// Episode resources are derived from one episode's content and keyed by
	// the episode id, so a later document for the episode replaces them.
	Episode
)

// String returns the scope's name, for test failures and logs.
func (s Scope) String() string {
	if s == Shared {
		return "shared"
	}
	return "episode"
}

// Resource is one FHIR resource an episode maps to. Values of one Map call
// share sub-structures (references such as the patient's), so treat them as
// read-only; Retire returns copies instead of changing them.
type Resource struct {
	Type  string // FHIR resource type, e.g. "Encounter"
	ID    string // deterministic FHIR id, see ID
	Scope Scope
	Value any // pointer to an r4 struct, e.g. *r4.Encounter
}

// DefaultSystemBase is the base URI of identifier systems and CodeSystems
// when Options.SystemBase is empty. Deployments should set their own.
const DefaultSystemBase = "https://kapgw.example/fhir"

// Options carries what a pure mapping cannot derive from the document.
type Options struct {
	// SystemBase is the base URI of the gateway's identifier systems and
	// CodeSystems; "" means DefaultSystemBase. A trailing slash is ignored.
	SystemBase string
	// Recorded is when the document was accepted (Provenance.recorded).
	Recorded time.Time
	// DocumentDigest is the hex sha256 of the accepted document; it names
	// the Provenance and is recorded as its source entity.
	DocumentDigest string
}

func (o Options) base() string {
	if o.SystemBase == "" {
		return DefaultSystemBase
	}
	return strings.TrimRight(o.SystemBase, "/")
}

// ErrOptions reports Options that Map cannot use; it is a programming error
// of the caller, never a fault of the document.
var ErrOptions = errors.New("mapping options")

// Map turns one episode document into its FHIR resources, in a fixed order:
// Patient, Organizations, Practitioners, PractitionerRoles, CareTeam,
// Conditions, EpisodeOfCare, CarePlan, Encounters, Medications,
// MedicationRequests, MedicationAdministrations, Observations,
// AdverseEvents, Provenance.
//
// It fails only for documents kap Validate would refuse (a dose naming an
// unknown prescription, a measure naming an unknown session) and for Options
// without Recorded or DocumentDigest.
func Map(ep *kap.Episode, opts Options) ([]Resource, error) {
	if ep == nil {
		return nil, fmt.Errorf("map episode: %w: nil episode", ErrOptions)
	}
	if opts.Recorded.IsZero() || opts.DocumentDigest == "" {
		return nil, fmt.Errorf("map episode %s: %w: Recorded and DocumentDigest are required", ep.ID, ErrOptions)
	}
	b := newBuilder(ep, opts)
	if err := b.build(); err != nil {
		return nil, fmt.Errorf("map episode %s: %w", ep.ID, err)
	}
	return b.out, nil
}

// builder holds the references every part of an episode's mapping needs.
type builder struct {
	ep   *kap.Episode
	opts Options
	base string
	out  []Resource

	patient      r4.Reference
	org          r4.Reference  // the medical practice
	therapistOrg r4.Reference  // the therapist's practice (org when absent)
	pharmacy     *r4.Reference // nil without a pharmacy
	prescriber   r4.Reference
	therapist    r4.Reference
	careTeam     r4.Reference
	episodeCare  r4.Reference
	conditions   []r4.Reference

	sessionIdx    map[string]int // session id to index in ep.Sessions
	rxIdx         map[string]int // prescription id to index in ep.Prescriptions
	encounter     []string       // Encounter id per session
	encRefs       []r4.Reference // reference to the Encounter per session
	medicationIDs []string       // Medication id per prescription
	request       []string       // MedicationRequest id per prescription
}

func newBuilder(ep *kap.Episode, opts Options) *builder {
	b := &builder{ep: ep, opts: opts, base: opts.base()}
	b.out = make([]Resource, 0, 16+2*len(ep.Sessions)+len(ep.Measures)+3*len(ep.Prescriptions))
	ct := ep.CareTeam
	b.patient = ref("Patient", ID("Patient", ep.Patient.ID))
	b.org = ref("Organization", orgID(ct.Organization.ID))
	b.therapistOrg = b.org
	if ct.TherapistOrganization != nil {
		b.therapistOrg = ref("Organization", orgID(ct.TherapistOrganization.ID))
	}
	if ep.Pharmacy != nil {
		r := ref("Organization", pharmacyID(ep.Pharmacy.ID))
		b.pharmacy = &r
	}
	b.prescriber = ref("Practitioner", ID("Practitioner", ct.Prescriber.ID))
	b.therapist = ref("Practitioner", ID("Practitioner", ct.Therapist.ID))
	b.careTeam = ref("CareTeam", ID("CareTeam", ep.ID))
	b.episodeCare = ref("EpisodeOfCare", ID("EpisodeOfCare", ep.ID))
	b.sessionIdx = make(map[string]int, len(ep.Sessions))
	b.encounter = make([]string, len(ep.Sessions))
	b.encRefs = make([]r4.Reference, 0, len(ep.Sessions))
	for i, s := range ep.Sessions {
		b.sessionIdx[s.ID] = i
		b.encounter[i] = ID("Encounter", ep.ID, s.ID)
		b.encRefs = append(b.encRefs, ref("Encounter", b.encounter[i]))
	}
	b.rxIdx = make(map[string]int, len(ep.Prescriptions))
	b.medicationIDs = make([]string, len(ep.Prescriptions))
	b.request = make([]string, len(ep.Prescriptions))
	for i, rx := range ep.Prescriptions {
		b.rxIdx[rx.ID] = i
		b.medicationIDs[i] = ID("Medication", ep.ID, rx.ID)
		b.request[i] = ID("MedicationRequest", ep.ID, rx.ID)
	}
	return b
}

func (b *builder) build() error {
	b.parties()
	b.plan()
	b.encounters()
	if err := b.medications(); err != nil {
		return err
	}
	if err := b.observations(); err != nil {
		return err
	}
	b.adverseEvents()
	if b.ep.Status == kap.EpisodeEnteredInError {
		for i, r := range b.out {
			if r.Scope == Episode {
				b.out[i] = retired(r)
			}
		}
	}
	b.provenance()
	return nil
}

// add appends a resource; the id is taken from the value's reference.
func (b *builder) add(typ, id string, scope Scope, v any) {
	b.out = append(b.out, Resource{Type: typ, ID: id, Scope: scope, Value: v})
}

// ident is an identifier in one of the gateway's systems.
func (b *builder) ident(kind, value string) r4.Identifier {
	s := &[2]string{b.base + "/sid/" + kind, value}
	return r4.Identifier{System: &s[0], Value: &s[1]}
}

// episodeKey is the identifier value of something named only within its
// episode: session, measure and prescription ids are unique per episode.
func (b *builder) episodeKey(parts ...string) string {
	return b.ep.ID + "/" + strings.Join(parts, "/")
}

// encounterID is the Encounter id of a session of this episode.
func (b *builder) encounterID(sessionID string) string {
	return b.encounter[b.sessionIdx[sessionID]]
}

// medicationID is the Medication id of a prescription of this episode.
func (b *builder) medicationID(rxID string) string {
	return b.medicationIDs[b.rxIdx[rxID]]
}

// requestID is the MedicationRequest id of a prescription of this episode.
func (b *builder) requestID(rxID string) string {
	return b.request[b.rxIdx[rxID]]
}

// encounterRef references the Encounter of a session of this episode. The
// references are shared by the resources that point at the session.
func (b *builder) encounterRef(sessionID string) *r4.Reference {
	return &b.encRefs[b.sessionIdx[sessionID]]
}
