// Package audit writes a FHIR AuditEvent for every access to patient data
// through the FHIR API, durably, before the response leaves.
//
// Reads have no transaction of their own, so "in the same transaction as
// the access" becomes: the response is held until its AuditEvents are
// committed, and refused (503) when they cannot be. Writer group-commits:
// one goroutine writes every record queued while the previous batch was
// committing in one transaction, then releases all their responses at
// once, so the cost per read is a share of one commit rather than one
// commit each.
//
// One AuditEvent is written per patient an access touches (as IHE Basic
// Audit Log Patterns does), so that AuditEvent?patient= finds every access
// to a patient; an access that touches no patient data (a miss, a refusal,
// a shared resource) still gets one, without a patient.
package audit

import (
	"crypto/rand"
	"fmt"
	"time"

	r4 "github.com/samply/golang-fhir-models/fhir-models/fhir"

	"github.com/kapgw/kapgw/fhir/fhirjson"
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
		id := rand.Text()
		body, err := build(id, p, a)
		if err != nil {
			return nil, err
		}
		out = append(out, store.AuditRecord{ID: id, Recorded: a.At, ClientID: a.ClientID, PatientID: p,
			Action: action(a.Interaction).Code(), Outcome: outcome(a.Status).Code(), Body: body})
	}
	return out, nil
}

// build encodes the AuditEvent of one patient's part of an access.
func build(id, patient string, a Access) ([]byte, error) {
	act, out := action(a.Interaction), outcome(a.Status)
	ev := r4.AuditEvent{
		Id:       &id,
		Type:     r4.Coding{System: ptr(systemEventType), Code: ptr("rest"), Display: ptr("RESTful Operation")},
		Subtype:  []r4.Coding{{System: ptr(systemInteraction), Code: ptr(a.Interaction)}},
		Action:   &act,
		Recorded: a.At.UTC().Format(time.RFC3339Nano),
		Outcome:  &out,
		Agent: []r4.AuditEventAgent{{
			Who:       &r4.Reference{Identifier: &r4.Identifier{System: ptr(systemClientID), Value: ptr(a.ClientID)}},
			Requestor: true,
		}},
		Source: r4.AuditEventSource{
			Observer: r4.Reference{Display: ptr("kapgw")},
			Type:     []r4.Coding{{System: ptr(systemSourceType), Code: ptr("4"), Display: ptr("Application Server")}},
		},
	}
	if patient != "" {
		ev.Entity = append(ev.Entity, r4.AuditEventEntity{What: &r4.Reference{Reference: ptr("Patient/" + patient)},
			Type: &r4.Coding{System: ptr(systemEntityType), Code: ptr("1")}, Role: &r4.Coding{System: ptr(systemObjectRole), Code: ptr("1")}})
	}
	for _, e := range a.Entries {
		// Each patient's AuditEvent names only that patient's resources
		// and shared ones: another patient's ids are not its business.
		if e.Ref == "Patient/"+patient || (e.Patient != "" && e.Patient != patient) {
			continue
		}
		ev.Entity = append(ev.Entity, r4.AuditEventEntity{What: &r4.Reference{Reference: ptr(e.Ref)},
			Type: &r4.Coding{System: ptr(systemEntityType), Code: ptr("2")}, Role: &r4.Coding{System: ptr(systemObjectRole), Code: ptr("4")}})
	}
	b, err := fhirjson.Marshal(ev)
	if err != nil {
		return nil, fmt.Errorf("encode audit event: %w", err)
	}
	return b, nil
}

// action is R for reads and histories, E for searches and operations.
func action(interaction string) r4.AuditEventAction {
	switch interaction {
	case "read", "vread", "history-instance", "history-type":
		return r4.AuditEventActionR
	}
	return r4.AuditEventActionE
}

// outcome is 0 (success), 4 (the request was refused: a client error) or
// 8 (the gateway failed).
func outcome(status int) r4.AuditEventOutcome {
	switch {
	case status >= 500:
		return r4.AuditEventOutcome8
	case status >= 400:
		return r4.AuditEventOutcome4
	}
	return r4.AuditEventOutcome0
}

func ptr(s string) *string { return &s }
