package pharmacy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	r4 "github.com/samply/golang-fhir-models/fhir-models/fhir"
	"github.com/tidwall/gjson"

	"github.com/kapgw/kapgw/fhir/fhirjson"
	"github.com/kapgw/kapgw/internal/store"
	"github.com/kapgw/kapgw/mappers"
	"github.com/kapgw/kapgw/pharmacy/rules"
)

// ResourceStore is what callbacks need of the store.
type ResourceStore interface {
	Read(ctx context.Context, typ, id string) (store.Version, error)
	PutResources(ctx context.Context, res []store.Resource) ([]store.Entry, error)
}

// ErrCallbackInvalid marks an authenticated callback that cannot be used:
// malformed, or naming an order the gateway never sent.
var ErrCallbackInvalid = errors.New("callback not usable")

// EventStore applies a callback event once, atomically (*store.Store).
type EventStore interface {
	ApplyRxEvent(ctx context.Context, e store.RxEvent) error
}

// Callbacks turns the pharmacy's callbacks into FHIR.
type Callbacks struct {
	store      EventStore
	secret     func(ctx context.Context) ([]byte, error)
	journal    Journal
	systemBase string
	now        func() time.Time
}

// NewCallbacks returns the callback receiver. secret returns the current
// HMAC secret (read through Vault, so rotations apply).
func NewCallbacks(st EventStore, secret func(ctx context.Context) ([]byte, error), journal Journal, systemBase string, now func() time.Time) *Callbacks {
	if systemBase == "" {
		systemBase = mappers.DefaultSystemBase
	}
	return &Callbacks{store: st, secret: secret, journal: journal, systemBase: systemBase, now: now}
}

// Receive authenticates one callback and applies it once: its event id is
// claimed in the transaction that writes its effects, so a repeat (however
// it races with the first) changes nothing, and two events for one order
// apply one after the other. RxFill updates the order's
// MedicationDispense; CancelRxResponse marks the MedicationRequest
// cancelled (or, denied, opens a Task); Error and RxChangeRequest open a
// Task for the prescriber.
func (c *Callbacks) Receive(ctx context.Context, timestamp, signature string, body []byte) error {
	secret, err := c.secret(ctx)
	if err != nil {
		return fmt.Errorf("callback secret: %w", err)
	}
	if err := VerifyCallback(secret, timestamp, signature, body, c.now()); err != nil {
		return err
	}
	var e Event
	if err := json.Unmarshal(body, &e); err != nil || e.EventID == "" || e.PrescriberOrderNumber == "" {
		return fmt.Errorf("%w: not an event", ErrCallbackInvalid)
	}
	step := Step{PrescriptionID: e.PrescriberOrderNumber, MessageID: e.RelatesToMessageID, Message: e.Type, Code: e.Code, Detail: fillDetail(e), At: c.now().UTC()}
	order := "MedicationRequest/" + e.PrescriberOrderNumber
	ev := store.RxEvent{EventID: e.EventID, OrderID: e.PrescriberOrderNumber, Type: e.Type, At: step.At}
	var apply func(mr []byte, cur map[string][]byte) ([]store.Resource, string, error)
	var warnings []rules.Finding // refill findings, added to the timeline
	switch e.Type {
	case EventRxFill:
		if e.FillStatus != FillDispensed && e.FillStatus != FillShipped && e.FillStatus != FillDelivered {
			return fmt.Errorf("%w: fill status", ErrCallbackInvalid)
		}
		if e.Refill < 0 || e.Refill > MaxRefillNumber {
			return fmt.Errorf("%w: refill number", ErrCallbackInvalid)
		}
		ev.Lock = append([]string{order}, fillLocks(e.PrescriberOrderNumber, e.Refill)...)
		apply = c.fill(e, &warnings)
	case EventCancelRxResponse:
		ev.Lock = []string{order, "Task/" + TaskID(e.PrescriberOrderNumber, TaskCancelDenied)}
		apply = c.cancelResponse(e)
	case EventError:
		ev.Lock = []string{order, "Task/" + TaskID(e.PrescriberOrderNumber, TaskFailed)}
		apply = c.task(e, TaskFailed, StepPharmacyError)
	case EventRxChangeRequest:
		ev.Lock = []string{order, "Task/" + TaskID(e.PrescriberOrderNumber, TaskChange)}
		apply = c.task(e, TaskChange, StepChangeRequest)
	default:
		return fmt.Errorf("%w: event type", ErrCallbackInvalid)
	}
	ev.Apply = func(cur map[string][]byte) ([]store.Resource, []store.RxStep, error) {
		mr, ok := cur[order]
		if !ok {
			return nil, nil, fmt.Errorf("%w: unknown order", ErrCallbackInvalid)
		}
		res, name, err := apply(mr, cur)
		if err != nil {
			return nil, nil, err
		}
		step.Step = name
		steps := []store.RxStep{{OrderID: e.PrescriberOrderNumber, MessageID: e.RelatesToMessageID,
			Message: e.Type, Step: name, Code: e.Code, Detail: fillDetail(e), TraceID: traceID(ctx), At: step.At}}
		for _, f := range warnings {
			steps = append(steps, store.RxStep{OrderID: e.PrescriberOrderNumber, MessageID: e.RelatesToMessageID,
				Message: e.Type, Step: StepWarned, Code: f.Code, Detail: fillDetail(e), TraceID: traceID(ctx), At: step.At})
		}
		return res, steps, nil
	}
	err = c.store.ApplyRxEvent(ctx, ev)
	if errors.Is(err, store.ErrDuplicateEvent) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("apply %s event: %w", e.Type, err)
	}
	_ = c.journal.Record(ctx, step)
	return nil
}

// DispenseID is the id of the MedicationDispense of an order.
func DispenseID(orderNumber string) string { return mappers.ID("MedicationDispense", orderNumber) }

// fill merges an RxFill into the MedicationDispense of its fill and, for
// a refill, re-checks the refills so far: early or unauthorised refills
// write the order's refill Task (a warning) in the same transaction.
func (c *Callbacks) fill(e Event, warnings *[]rules.Finding) func(mr []byte, cur map[string][]byte) ([]store.Resource, string, error) {
	return func(mr []byte, cur map[string][]byte) ([]store.Resource, string, error) {
		order := e.PrescriberOrderNumber
		id := FillDispenseID(order, e.Refill)
		md := r4.MedicationDispense{Id: &id}
		if b, ok := cur["MedicationDispense/"+id]; ok {
			if err := fhirjson.Unmarshal(b, &md); err != nil {
				return nil, "", fmt.Errorf("decode dispense %s: %w", id, err)
			}
			md.Meta = nil
		}
		subject := gjson.GetBytes(mr, "subject.reference").String()
		applyFill(&md, e, order, subject, gjson.GetBytes(mr, "medicationReference.reference").String(), c.systemBase)
		body, err := fhirjson.Marshal(md)
		if err != nil {
			return nil, "", fmt.Errorf("encode dispense %s: %w", id, err)
		}
		out := []store.Resource{{Type: "MedicationDispense", ID: id, PatientID: strings.TrimPrefix(subject, "Patient/"), Body: body}}
		if e.Refill == 0 {
			return out, e.FillStatus, nil
		}
		cur["MedicationDispense/"+id] = body
		findings := refillFindings(order, mr, cur, e.Refill)
		prevTask := cur["Task/"+TaskID(order, TaskRefill)]
		*warnings = newFindings(findings[len(refillFindings(order, mr, cur, e.Refill-1)):], prevTask)
		if len(newFindings(findings, prevTask)) == 0 {
			return out, e.FillStatus, nil // nothing the Task does not say already
		}
		// Stamped with when the refill was prepared, so a repeated event
		// writes the same Task (no new version).
		at, _ := time.Parse(time.RFC3339, *md.WhenPrepared)
		task, err := taskResource(TaskArgs{Order: order, TaskKind: TaskRefill, Findings: findings, At: at}, mr)
		if err != nil {
			return nil, "", err
		}
		return append(out, task), e.FillStatus, nil
	}
}

// cancelResponse marks the order cancelled when the pharmacy approved the
// CancelRx (a stopped or cancelled order stays as it is), and opens a Task
// when it refused.
func (c *Callbacks) cancelResponse(e Event) func(mr []byte, cur map[string][]byte) ([]store.Resource, string, error) {
	if !e.Approved {
		return c.task(e, TaskCancelDenied, StepCancelDenied)
	}
	return func(mr []byte, _ map[string][]byte) ([]store.Resource, string, error) {
		switch gjson.GetBytes(mr, "status").String() {
		case "cancelled", "stopped":
			return nil, StepCancelled, nil
		}
		var m r4.MedicationRequest
		if err := fhirjson.Unmarshal(mr, &m); err != nil {
			return nil, "", fmt.Errorf("decode order: %w", err)
		}
		m.Meta, m.Status = nil, "cancelled"
		body, err := fhirjson.Marshal(m)
		if err != nil {
			return nil, "", fmt.Errorf("encode order: %w", err)
		}
		patient := strings.TrimPrefix(gjson.GetBytes(mr, "subject.reference").String(), "Patient/")
		return []store.Resource{{Type: "MedicationRequest", ID: e.PrescriberOrderNumber, PatientID: patient, Body: body}}, StepCancelled, nil
	}
}

// task opens the prescriber's Task of kind for the event.
func (c *Callbacks) task(e Event, kind, step string) func(mr []byte, cur map[string][]byte) ([]store.Resource, string, error) {
	return func(mr []byte, _ map[string][]byte) ([]store.Resource, string, error) {
		code := e.Code
		if code == "" {
			code = "unspecified"
		}
		r, err := taskResource(TaskArgs{Order: e.PrescriberOrderNumber, TaskKind: kind, Code: code, Description: e.Description, At: e.OccurredAt}, mr)
		if err != nil {
			return nil, "", err
		}
		return []store.Resource{r}, step, nil
	}
}

// applyFill merges one fill event into md. Every field only ever gains a
// value, and the status follows the furthest step seen, so events may come
// twice or out of order.
func applyFill(md *r4.MedicationDispense, e Event, mrID, subject, medication, systemBase string) {
	md.Subject = &r4.Reference{Reference: &subject}
	md.Type = fillType(e.Refill)
	md.MedicationReference = r4.Reference{Reference: &medication}
	mrRef := "MedicationRequest/" + mrID
	md.AuthorizingPrescription = []r4.Reference{{Reference: &mrRef}}
	if e.Quantity > 0 && md.Quantity == nil {
		v := json.Number(fmt.Sprint(e.Quantity))
		unit, sys, code := "troche", "http://unitsofmeasure.org", "{troche}"
		md.Quantity = &r4.Quantity{Value: &v, Unit: &unit, System: &sys, Code: &code}
	}
	at := e.OccurredAt.UTC().Format(time.RFC3339)
	if md.WhenPrepared == nil {
		md.WhenPrepared = &at // a shipped or delivered order was prepared by then
	}
	if e.TrackingNumber != "" && len(md.Identifier) == 0 {
		sys := systemBase + "/sid/shipment-tracking"
		carrier := e.Carrier + " tracking number"
		md.Identifier = []r4.Identifier{{System: &sys, Value: &e.TrackingNumber, Type: &r4.CodeableConcept{Text: &carrier}}}
	}
	if e.FillStatus != FillDispensed && md.Destination == nil {
		home := "Patient's home (shipped by the pharmacy)"
		md.Destination = &r4.Reference{Display: &home}
	}
	if e.FillStatus == FillDelivered && md.WhenHandedOver == nil {
		md.WhenHandedOver = &at
	}
	md.Status = "in-progress"
	if md.WhenHandedOver != nil {
		md.Status = "completed"
	}
}

// fillType codes a dispense as the first fill or a refill (HL7 v3
// ActPharmacySupplyType FF, RF).
func fillType(refill int) *r4.CodeableConcept {
	sys, code, display := "http://terminology.hl7.org/CodeSystem/v3-ActCode", "FF", "First Fill"
	if refill > 0 {
		code, display = "RF", "Refill"
	}
	return &r4.CodeableConcept{Coding: []r4.Coding{{System: &sys, Code: &code, Display: &display}}}
}

// newFindings are the findings of this refill that its Task (taskBody,
// nil when there is none) does not list yet: what the timeline gains, once.
func newFindings(fs []rules.Finding, taskBody []byte) []rules.Finding {
	var out []rules.Finding
	for _, f := range fs {
		if !bytes.Contains(taskBody, []byte(f.Message)) {
			out = append(out, f)
		}
	}
	return out
}

// fillDetail names the refill of an RxFill event on the timeline ("" for
// the first fill and other events).
func fillDetail(e Event) string {
	if e.Type != EventRxFill || e.Refill == 0 {
		return ""
	}
	return "refill " + strconv.Itoa(e.Refill)
}
