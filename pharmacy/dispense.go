package pharmacy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	r4 "github.com/samply/golang-fhir-models/fhir-models/fhir"
	"github.com/tidwall/gjson"

	"github.com/kapgw/kapgw/fhir/fhirjson"
	"github.com/kapgw/kapgw/internal/store"
	"github.com/kapgw/kapgw/mappers"
)

// ResourceStore is what callbacks need of the store.
type ResourceStore interface {
	Read(ctx context.Context, typ, id string) (store.Version, error)
	PutResources(ctx context.Context, res []store.Resource) ([]store.Entry, error)
}

// ErrCallbackInvalid marks an authenticated callback that cannot be used:
// malformed, or naming an order the gateway never sent.
var ErrCallbackInvalid = errors.New("callback not usable")

// Callbacks turns the pharmacy's callbacks into FHIR.
type Callbacks struct {
	store      ResourceStore
	secret     func(ctx context.Context) ([]byte, error)
	journal    Journal
	systemBase string
	now        func() time.Time
}

// NewCallbacks returns the callback receiver. secret returns the current
// HMAC secret (read through Vault, so rotations apply).
func NewCallbacks(st ResourceStore, secret func(ctx context.Context) ([]byte, error), journal Journal, systemBase string, now func() time.Time) *Callbacks {
	if systemBase == "" {
		systemBase = mappers.DefaultSystemBase
	}
	return &Callbacks{store: st, secret: secret, journal: journal, systemBase: systemBase, now: now}
}

// Receive authenticates one callback and applies it. RxFill updates the
// prescription's MedicationDispense; duplicates and late arrivals of an
// earlier status change nothing, since the dispense only moves forward.
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
	step := Step{PrescriptionID: e.PrescriberOrderNumber, MessageID: e.RelatesToMessageID, Message: e.Type, Code: e.Code, At: c.now().UTC()}
	switch e.Type {
	case EventRxFill:
		if err := c.fill(ctx, e); err != nil {
			return err
		}
		step.Step = e.FillStatus
	case EventCancelRxResponse:
		step.Step = StepCancelled
		if !e.Approved {
			step.Step = StepFailed
		}
	case EventError, EventRxChangeRequest:
		step.Step = StepFailed
	default:
		return fmt.Errorf("%w: event type", ErrCallbackInvalid)
	}
	_ = c.journal.Record(ctx, step)
	return nil
}

// DispenseID is the id of the MedicationDispense of an order.
func DispenseID(orderNumber string) string { return mappers.ID("MedicationDispense", orderNumber) }

func (c *Callbacks) fill(ctx context.Context, e Event) error {
	if e.FillStatus != FillDispensed && e.FillStatus != FillShipped && e.FillStatus != FillDelivered {
		return fmt.Errorf("%w: fill status", ErrCallbackInvalid)
	}
	mr, err := c.store.Read(ctx, "MedicationRequest", e.PrescriberOrderNumber)
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("%w: unknown order", ErrCallbackInvalid)
	}
	if err != nil {
		return fmt.Errorf("read order: %w", err)
	}
	id := DispenseID(e.PrescriberOrderNumber)
	md := r4.MedicationDispense{Id: &id}
	cur, err := c.store.Read(ctx, "MedicationDispense", id)
	switch {
	case err == nil:
		if err := fhirjson.Unmarshal(cur.Body, &md); err != nil {
			return fmt.Errorf("decode dispense %s: %w", id, err)
		}
		md.Meta = nil
	case !errors.Is(err, store.ErrNotFound):
		return fmt.Errorf("read dispense %s: %w", id, err)
	}
	subject := gjson.GetBytes(mr.Body, "subject.reference").String()
	applyFill(&md, e, mr.ID, subject, gjson.GetBytes(mr.Body, "medicationReference.reference").String(), c.systemBase)
	body, err := fhirjson.Marshal(md)
	if err != nil {
		return fmt.Errorf("encode dispense %s: %w", id, err)
	}
	_, err = c.store.PutResources(ctx, []store.Resource{{Type: "MedicationDispense", ID: id, PatientID: strings.TrimPrefix(subject, "Patient/"), Body: body}})
	return err
}

// applyFill merges one fill event into md. Every field only ever gains a
// value, and the status follows the furthest step seen, so events may come
// twice or out of order.
func applyFill(md *r4.MedicationDispense, e Event, mrID, subject, medication, systemBase string) {
	md.Subject = &r4.Reference{Reference: &subject}
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
