package pharmacy

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/riverqueue/river"
	r4 "github.com/samply/golang-fhir-models/fhir-models/fhir"
	"github.com/tidwall/gjson"

	"github.com/kapgw/kapgw/fhir/fhirjson"
	"github.com/kapgw/kapgw/internal/store"
	"github.com/kapgw/kapgw/mappers"
	"github.com/kapgw/kapgw/pharmacy/rules"
)

// Task kinds: why the prescriber must act on an order.
const (
	// TaskBlocked lists the rule findings of a prescription (blocks or
	// warnings).
	TaskBlocked = "blocked"
	// TaskFailed reports a SCRIPT Error from the pharmacy.
	TaskFailed = "failed"
	// TaskAccounting warns that more lozenges were taken than dispensed.
	TaskAccounting = "accounting"
	// TaskChange is the pharmacy's RxChangeRequest for the prescriber.
	TaskChange = "change"
	// TaskCancelDenied reports that the pharmacy refused a CancelRx.
	TaskCancelDenied = "cancel-denied"
	// TaskRefill warns that a refill came early (before the previous
	// fill could be used up at the prescribed cadence) or beyond the
	// refills allowed.
	TaskRefill = "refill"
)

// TaskID is the id of the Task of one kind for an order.
func TaskID(order, kind string) string { return mappers.ID("Task", order, kind) }

// TaskArgs is the job that writes (or resolves) the prescriber's Task for
// an order. It is inserted in the episode's transaction, so the Task
// follows exactly the documents that were accepted.
type TaskArgs struct {
	Order    string `json:"order"`
	TaskKind string `json:"kind"`
	// Findings are the rule findings (ids and codes only); none resolves
	// an open Task.
	Findings []rules.Finding `json:"findings"`
	// Code is the pharmacy's Error code for TaskFailed (or the reason
	// code of a change request or refused cancel).
	Code string `json:"code,omitempty"`
	// Description is the pharmacy's text of a change request: it goes in
	// the Task (patient data may be in it), never in logs or the journal.
	Description string `json:"-"`
	// Administered counts the units the episode's dosing sessions gave
	// from this order, for TaskAccounting.
	Administered int       `json:"administered,omitempty"`
	At           time.Time `json:"at"`
}

// Kind names the job.
func (TaskArgs) Kind() string { return "pharmacy_task" }

// TaskWriter is the worker that writes TaskArgs.
type TaskWriter struct {
	river.WorkerDefaults[TaskArgs]
	store ResourceStore
}

// NewTaskWriter returns the worker; register it with river.AddWorker.
func NewTaskWriter(st ResourceStore) *TaskWriter { return &TaskWriter{store: st} }

// Work writes the Task: requested while there are findings, completed
// once a later document clears them (nothing when there never was one).
func (w *TaskWriter) Work(ctx context.Context, job *river.Job[TaskArgs]) error {
	a := job.Args
	if a.TaskKind == TaskAccounting {
		var err error
		if a, err = account(ctx, w.store, a); err != nil {
			return err
		}
	}
	return writeTask(ctx, w.store, a)
}

// account compares the units administered with the units the pharmacy
// reported dispensed for the order, the first fill and every refill;
// more taken than dispensed becomes a warning finding. With no dispense
// reported yet there is nothing to compare (lozenges for in-office
// sessions may come from clinic stock).
func account(ctx context.Context, st ResourceStore, a TaskArgs) (TaskArgs, error) {
	a.Findings = nil
	dispensed, fills := 0, 0
	for ; fills <= MaxRefillNumber; fills++ {
		md, err := st.Read(ctx, "MedicationDispense", FillDispenseID(a.Order, fills))
		if errors.Is(err, store.ErrNotFound) {
			break
		}
		if err != nil {
			return a, fmt.Errorf("read dispense of %s: %w", a.Order, err)
		}
		dispensed += int(gjson.GetBytes(md.Body, "quantity.value").Int())
	}
	if fills > 0 && a.Administered > dispensed {
		a.Findings = []rules.Finding{{Code: "troche-accounting", Severity: rules.Warn,
			Message: fmt.Sprintf("%d units administered, %d dispensed in %d fill(s)", a.Administered, dispensed, fills)}}
	}
	return a, nil
}

func writeTask(ctx context.Context, st ResourceStore, a TaskArgs) error {
	id := TaskID(a.Order, a.TaskKind)
	if len(a.Findings) == 0 && a.Code == "" {
		if _, err := st.Read(ctx, "Task", id); errors.Is(err, store.ErrNotFound) {
			return nil
		} else if err != nil {
			return fmt.Errorf("read task %s: %w", id, err)
		}
	}
	mr, err := st.Read(ctx, "MedicationRequest", a.Order)
	if err != nil {
		return fmt.Errorf("read order %s: %w", a.Order, err)
	}
	r, err := taskResource(a, mr.Body)
	if err != nil {
		return err
	}
	_, err = st.PutResources(ctx, []store.Resource{r})
	return err
}

// taskResource builds the Task of a for the order whose MedicationRequest
// is mrBody.
func taskResource(a TaskArgs, mrBody []byte) (store.Resource, error) {
	id := TaskID(a.Order, a.TaskKind)
	subject := gjson.GetBytes(mrBody, "subject.reference").String()
	t := task(a, id, subject, gjson.GetBytes(mrBody, "requester.reference").String())
	body, err := fhirjson.Marshal(t)
	if err != nil {
		return store.Resource{}, fmt.Errorf("encode task %s: %w", id, err)
	}
	return store.Resource{Type: "Task", ID: id, PatientID: strings.TrimPrefix(subject, "Patient/"), Body: body}, nil
}

// task builds the Task. Its text names rule codes and SCRIPT codes only.
func task(a TaskArgs, id, subject, requester string) *r4.Task {
	focus := "MedicationRequest/" + a.Order
	at := a.At.UTC().Format(time.RFC3339)
	status, business, desc := r4.TaskStatusRequested, a.TaskKind, "Resolve the findings that keep this prescription from the pharmacy"
	switch {
	case a.TaskKind == TaskAccounting && len(a.Findings) > 0:
		business, desc = "warning", "More lozenges were taken than the pharmacy dispensed for this prescription"
	case a.TaskKind == TaskRefill && len(a.Findings) > 0:
		business, desc = "warning", "The pharmacy dispensed a refill of this prescription early, or beyond the refills it allows"
	case a.TaskKind == TaskFailed:
		desc = "The pharmacy refused the prescription (SCRIPT Error " + a.Code + ")"
	case a.TaskKind == TaskChange:
		desc = "The pharmacy asks for a change to this prescription (RxChangeRequest " + a.Code + ")"
	case a.TaskKind == TaskCancelDenied:
		desc = "The pharmacy did not cancel this prescription (CancelRxResponse denied " + a.Code + "); it may still be filled"
	case len(a.Findings) == 0:
		status, business = r4.TaskStatusCompleted, "resolved"
	case !rules.Blocked(a.Findings):
		business, desc = "warning", "Review the warnings on this prescription; it was sent"
	}
	t := &r4.Task{
		Id: &id, Status: status, Intent: "order", Description: &desc,
		BusinessStatus: &r4.CodeableConcept{Text: &business},
		Focus:          &r4.Reference{Reference: &focus},
		AuthoredOn:     &at, LastModified: &at,
	}
	if subject != "" {
		t.For = &r4.Reference{Reference: &subject}
	}
	if requester != "" {
		t.Owner = &r4.Reference{Reference: &requester}
	}
	if a.Description != "" {
		kind := "pharmacy note"
		t.Input = append(t.Input, r4.TaskInput{Type: r4.CodeableConcept{Text: &kind}, ValueString: a.Description})
	}
	for _, f := range a.Findings {
		code, msg := f.Severity+": "+f.Code, f.Message
		if f.Expression != "" {
			msg += " (" + f.Expression + ")"
		}
		t.Input = append(t.Input, r4.TaskInput{Type: r4.CodeableConcept{Text: &code}, ValueString: msg})
	}
	return t
}
