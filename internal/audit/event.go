// Package audit writes a FHIR AuditEvent for every access to patient data
// through the FHIR API and the intake API's reads, durably, before the
// response leaves.
//
// Reads have no transaction of their own, so "in the same transaction as
// the access" becomes: the response is held until its AuditEvents are
// committed, and refused (503) when they cannot be. Writer group-commits:
// a committer writes every record queued while the previous batch was
// committing in one transaction (with the exchange log rows queued
// meanwhile, see Rider), then releases all their responses at once, so the
// cost per read is a share of one commit rather than one commit each. On
// SQLite a group is appended to a Journal instead (one write, no
// transaction) and moved into the database in the background.
//
// One AuditEvent is written per patient an access touches (as IHE Basic
// Audit Log Patterns does), so that AuditEvent?patient= finds every access
// to a patient; an access that touches no patient data (a miss, a refusal,
// a shared resource) still gets one, without a patient.
package audit

import (
	"crypto/rand"
	"encoding/json"
	"time"

	"github.com/kapgw/kapgw/internal/store"
)

// Access is one access to the FHIR API. It holds ids and codes only: no
// query values, which can carry identifiers or names.
type Access struct {
	ClientID string
	// Interaction is a FHIR restful-interaction code: read, vread,
	// search-type, history-instance, history-type or operation.
	Interaction string
	// Status is the HTTP status of the response.
	Status   int
	Patients []string // ids of the patients whose data was returned or asked for
	Entries  []Entry  // the resources returned or asked for
	At       time.Time
}

// Entry is one resource of an access and the patient it belongs to (empty
// for shared resources such as a Practitioner).
type Entry struct {
	Ref     string // "Type/id"
	Patient string
}

// Codes the AuditEvents use.
const (
	systemEventType   = "http://terminology.hl7.org/CodeSystem/audit-event-type"
	systemInteraction = "http://hl7.org/fhir/restful-interaction"
	systemEntityType  = "http://terminology.hl7.org/CodeSystem/audit-entity-type"
	systemObjectRole  = "http://terminology.hl7.org/CodeSystem/object-role"
	systemSourceType  = "http://terminology.hl7.org/CodeSystem/security-source-type"
	systemClientID    = "urn:kapgw:client-id"
)

// Records turns an access into its AuditEvents: one per patient, or one
// without a patient when none was touched.
func Records(a Access) ([]store.AuditRecord, error) {
	patients := a.Patients
	if len(patients) == 0 {
		patients = []string{""}
	}
	out := make([]store.AuditRecord, 0, len(patients))
	for _, p := range patients {
		id := newID(a.At)
		out = append(out, store.AuditRecord{ID: id, Recorded: a.At, ClientID: a.ClientID, PatientID: p,
			Action: string(action(a.Interaction)), Outcome: outcomeCode(a.Status), Body: build(id, p, a)})
	}
	return out, nil
}

// crockford is Crockford's base 32 alphabet, in ASCII order, so that ids
// sort by the time they start with.
const crockford = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

// newID is an AuditEvent id: 10 characters of the millisecond time, then
// 16 of randomness (80 bits). Ids made close in time share a prefix, so
// the unique index on id grows at its right edge instead of dirtying a
// random page per record on every group commit.
func newID(at time.Time) string {
	var b [26]byte
	ms := uint64(at.UnixMilli())
	for i := 9; i >= 0; i-- {
		b[i] = crockford[ms&31]
		ms >>= 5
	}
	var r [10]byte
	_, _ = rand.Read(r[:])
	var bits uint64
	var n uint
	j := 10
	for _, c := range r {
		bits, n = bits<<8|uint64(c), n+8
		for n >= 5 {
			n -= 5
			b[j] = crockford[(bits>>n)&31]
			j++
		}
	}
	return string(b[:])
}

// build encodes the AuditEvent of one patient's part of an access. It
// appends to a fixed template rather than encoding a struct: the shape
// never changes and this runs for every read. (TestBuildMatchesModel checks
// it against the samply model encoded by fhirjson.)
func build(id, patient string, a Access) []byte {
	b := make([]byte, 0, 1024+len(a.Entries)*220)
	b = append(b, `{"resourceType":"AuditEvent","id":`...)
	b = appendString(b, id)
	b = append(b, `,"type":{"system":"`+systemEventType+`","code":"rest","display":"RESTful Operation"},"subtype":[{"system":"`+systemInteraction+`","code":`...)
	b = appendString(b, a.Interaction)
	b = append(b, `}],"action":"`...)
	b = append(b, action(a.Interaction)...)
	b = append(b, `","recorded":"`...)
	b = a.At.UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","outcome":"`...)
	b = append(b, outcomeCode(a.Status)...)
	b = append(b, `","agent":[{"who":{"identifier":{"system":"`+systemClientID+`","value":`...)
	b = appendString(b, a.ClientID)
	b = append(b, `}},"requestor":true}],"source":{"observer":{"display":"kapgw"},"type":[{"system":"`+systemSourceType+`","code":"4","display":"Application Server"}]}`...)
	first := true
	entity := func(ref, typ, role string) {
		if first {
			b = append(b, `,"entity":[`...)
			first = false
		} else {
			b = append(b, ',')
		}
		b = append(b, `{"what":{"reference":`...)
		b = appendString(b, ref)
		b = append(b, `},"type":{"system":"`+systemEntityType+`","code":"`...)
		b = append(b, typ...)
		b = append(b, `"},"role":{"system":"`+systemObjectRole+`","code":"`...)
		b = append(b, role...)
		b = append(b, `"}}`...)
	}
	if patient != "" {
		entity("Patient/"+patient, "1", "1")
	}
	for _, e := range a.Entries {
		// Each patient's AuditEvent names only that patient's resources
		// and shared ones: another patient's ids are not its business.
		if e.Ref == "Patient/"+patient || (e.Patient != "" && e.Patient != patient) {
			continue
		}
		entity(e.Ref, "2", "4")
	}
	if !first {
		b = append(b, ']')
	}
	return append(b, '}')
}

// appendString appends s as a JSON string. Ids and codes are plain ASCII;
// anything else goes through encoding/json.
func appendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x80 || c == '"' || c == '\\' {
			q, _ := json.Marshal(s) // a string always encodes
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// action is R for reads and histories, E for searches and operations.
func action(interaction string) string {
	switch interaction {
	case "read", "vread", "history-instance", "history-type":
		return "R"
	}
	return "E"
}

// outcomeCode is 0 (success), 4 (the request was refused: a client error)
// or 8 (the gateway failed).
func outcomeCode(status int) string {
	switch {
	case status >= 500:
		return "8"
	case status >= 400:
		return "4"
	}
	return "0"
}
