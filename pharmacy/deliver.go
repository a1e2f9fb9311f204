package pharmacy

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/riverqueue/river"

	"github.com/kapgw/kapgw/internal/secrets"
	"github.com/kapgw/kapgw/internal/store"
	"github.com/kapgw/kapgw/pharmacy/sign"
)

// SendArgs is the job that signs and delivers one SCRIPT message. Body is
// fixed when the job is inserted, so every attempt sends the same bytes
// under the same MessageID and the pharmacy can de-duplicate; only the
// signature over those bytes is made again on each attempt. Body is PHI
// and lives only in the database, never in logs.
type SendArgs struct {
	Message        string `json:"message"`
	MessageID      string `json:"message_id" river:"unique"`
	PrescriptionID string `json:"prescription_id"`
	// Order is the PrescriberOrderNumber, the MedicationRequest id.
	Order     string `json:"order"`
	EpisodeID string `json:"episode_id"`
	Body      []byte `json:"body"`
	// TraceID is the trace of the request that queued the message, so the
	// timeline links delivery to it.
	TraceID string `json:"trace_id,omitempty"`
}

// Kind names the job.
func (SendArgs) Kind() string { return "pharmacy_send" }

// InsertOpts makes the job unique per MessageID (completed jobs included)
// and retries an unknown outcome for about a day with River's backoff.
func (SendArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{MaxAttempts: 20, UniqueOpts: river.UniqueOpts{ByArgs: true}}
}

// Steps of a prescription's journey as the exchange log records them.
const (
	StepBlocked   = "blocked"
	StepQueued    = "queued"
	StepSigned    = "signed"
	StepSent      = "sent"
	StepAccepted  = "accepted"
	StepFailed    = "failed"
	StepUnknown   = "unknown"
	StepDispensed = "dispensed"
	StepShipped   = "shipped"
	StepDelivered = "delivered"
	StepCancelled = "cancelled"
)

// Step is one event of a prescription's journey. It holds ids and codes,
// never patient data.
type Step struct {
	PrescriptionID string
	MessageID      string
	Message        string
	Step           string
	// EpisodeID is the KAP episode of a delivery step, so the exchange log
	// finds the messages of an episode; empty on callbacks.
	EpisodeID string
	// Duration is how long the pharmacy took to answer, on the step that
	// ends a send (accepted, failed, unknown).
	Duration time.Duration
	// Code and Detail explain a failure (SCRIPT codes, rule codes).
	Code   string
	Detail string
	At     time.Time
}

// Journal records steps: the seam for the exchange log.
type Journal interface {
	Record(ctx context.Context, s Step) error
}

// LogJournal records steps as log lines only.
type LogJournal struct{ Log *slog.Logger }

// Record logs the step.
func (j LogJournal) Record(ctx context.Context, s Step) error {
	j.Log.InfoContext(ctx, "prescription step", "prescription_id", s.PrescriptionID, "message_id", s.MessageID,
		"message", s.Message, "step", s.Step, "code", s.Code)
	return nil
}

// Sender is the worker that delivers SendArgs jobs.
type Sender struct {
	river.WorkerDefaults[SendArgs]
	client  *Client
	signer  secrets.Signer
	journal Journal
	store   ResourceStore
	archive AttemptLog
	now     func() time.Time
}

// NewSender returns the worker; register it with river.AddWorker. A SCRIPT
// Error becomes a Task for the prescriber in st.
func NewSender(client *Client, signer secrets.Signer, journal Journal, st ResourceStore, now func() time.Time) *Sender {
	return &Sender{client: client, signer: signer, journal: journal, store: st, archive: nopAttempts{}, now: now}
}

// WithAttemptLog returns s recording every attempt (signature, status,
// count) of the archived message and its timeline steps in l.
func (s *Sender) WithAttemptLog(l AttemptLog) *Sender {
	c := *s
	c.archive = l
	return &c
}

// Timeout bounds one attempt; the HTTP client's own timeout is shorter.
func (s *Sender) Timeout(*river.Job[SendArgs]) time.Duration { return time.Minute }

// Work signs the fixed bytes and sends them. Status or Verify completes
// the job; Error completes it as failed (never retried: the prescriber must
// act); anything else is unknown and returned, so River retries the same
// MessageID later.
func (s *Sender) Work(ctx context.Context, job *river.Job[SendArgs]) error {
	a := job.Args
	step := Step{PrescriptionID: a.PrescriptionID, MessageID: a.MessageID, Message: a.Message, EpisodeID: a.EpisodeID}
	jws, err := sign.Sign(ctx, s.signer, a.Body)
	if err != nil {
		return fmt.Errorf("%s %s: %w", a.Message, a.MessageID, err)
	}
	// Archived before sending: a message the ledger cannot record is not
	// sent yet, and the retry reuses the MessageID.
	if err := s.attempt(ctx, a, jws, statusSent, "", StepSigned, StepSent); err != nil {
		return fmt.Errorf("%s %s: %w", a.Message, a.MessageID, err)
	}
	s.record(ctx, step, StepSigned, "", "")
	s.record(ctx, step, StepSent, "", "")
	sentAt := s.now()
	out, err := s.client.Send(ctx, a.Body, jws)
	step.Duration = s.now().Sub(sentAt)
	if err != nil {
		_ = s.attempt(ctx, a, "", statusUnknownMsg, "", StepUnknown)
		s.record(ctx, step, StepUnknown, "", "")
		return fmt.Errorf("%s %s: %w", a.Message, a.MessageID, err)
	}
	if out.Delivered() {
		_ = s.attempt(ctx, a, "", statusAcceptedMsg, out.Code, StepAccepted)
		s.record(ctx, step, StepAccepted, out.Code, "")
		return nil
	}
	_ = s.attempt(ctx, a, "", statusFailedMsg, out.Code, StepFailed)
	s.record(ctx, step, StepFailed, out.Code, out.DescriptionCode)
	// An Error is final for this MessageID; failing to write the Task is
	// retried, and resending is harmless: the pharmacy answers the same.
	if err := writeTask(ctx, s.store, TaskArgs{Order: a.Order, TaskKind: TaskFailed, Code: out.Code, At: s.now()}); err != nil {
		return fmt.Errorf("%s %s: task: %w", a.Message, a.MessageID, err)
	}
	return nil
}

// attempt records one attempt's status and steps in the archive; jws is
// set (and the attempt counted) when the message is about to be sent.
func (s *Sender) attempt(ctx context.Context, a SendArgs, jws, status, code string, steps ...string) error {
	now := s.now().UTC()
	trace := traceID(ctx)
	if trace == "" {
		trace = a.TraceID
	}
	at := store.RxAttempt{MessageID: a.MessageID, JWS: jws, Counted: jws != "", Status: status, Code: code, At: now}
	for _, st := range steps {
		at.Steps = append(at.Steps, store.RxStep{OrderID: a.Order, PrescriptionID: a.PrescriptionID, MessageID: a.MessageID,
			Message: a.Message, Step: st, Code: code, TraceID: trace, At: now})
	}
	return s.archive.RecordRxAttempt(ctx, at)
}

// record journals a step; a journal failure must not resend a message the
// pharmacy may already have, so it is only logged by the journal itself.
func (s *Sender) record(ctx context.Context, st Step, step, code, detail string) {
	st.Step, st.Code, st.Detail, st.At = step, code, detail, s.now().UTC()
	_ = s.journal.Record(ctx, st)
}
