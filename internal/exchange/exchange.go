// Package exchange records the exchange log: every message into or out of
// the gateway (intake, partner pulls, pharmacy messages and callbacks, EHR
// pushes) with its trace id, episode, partner, resource references,
// direction, status, attempt, duration and error class, so that an
// integration engineer can answer "what happened to this request" from a
// trace id or an episode id.
//
// Payloads are encrypted with Vault Transit before they reach the database
// and are decrypted only for an admin who asks for one exchange, which is
// itself recorded (kind admin).
package exchange

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/kapgw/kapgw/internal/secrets"
	"github.com/kapgw/kapgw/internal/store"
)

// Kinds of exchange.
const (
	KindIntake   = "intake"   // the clinic platform's episode PUT
	KindPull     = "pull"     // a partner's FHIR API request
	KindPharmacy = "pharmacy" // a SCRIPT message out or a callback in
	KindPush     = "push"     // a push attempt to a partner EHR
	KindAdmin    = "admin"    // an admin viewing a payload
)

// Directions of an exchange, seen from the gateway.
const (
	In  = "in"
	Out = "out"
)

// Store is where the log lives; *store.Store is it.
type Store interface {
	AddExchange(ctx context.Context, e store.Exchange) (int64, error)
	ExchangeByID(ctx context.Context, id int64) (store.Exchange, error)
	Exchanges(ctx context.Context, f store.ExchangeFilter) ([]store.Exchange, error)
	AddExchanges(ctx context.Context, es []store.Exchange) error
}

// Recorder writes the exchange log.
type Recorder struct {
	st     Store
	cipher secrets.Cipher
	log    *slog.Logger
	now    func() time.Time
	batch  *batcher // nil: Enqueue writes at once
}

// New returns a recorder writing to st and encrypting payloads with c.
func New(st Store, c secrets.Cipher, log *slog.Logger, now func() time.Time) *Recorder {
	if now == nil {
		now = time.Now
	}
	return &Recorder{st: st, cipher: c, log: log, now: now}
}

// Record appends e to the log, with payload encrypted when there is one. It
// fills TraceID from ctx's span and At from the clock when they are empty.
// A payload that cannot be encrypted is left out (the row records
// error class payload_unencrypted) rather than stored in the clear.
func (r *Recorder) Record(ctx context.Context, e store.Exchange, payload []byte) (int64, error) {
	id, err := r.st.AddExchange(ctx, r.prepare(ctx, e, payload))
	if err != nil {
		return 0, fmt.Errorf("record exchange: %w", err)
	}
	return id, nil
}

// prepare fills the trace id and time and encrypts the payload.
func (r *Recorder) prepare(ctx context.Context, e store.Exchange, payload []byte) store.Exchange {
	if e.TraceID == "" {
		if sc := trace.SpanContextFromContext(ctx); sc.HasTraceID() {
			e.TraceID = sc.TraceID().String()
		}
	}
	if e.At.IsZero() {
		e.At = r.now()
	}
	if len(payload) > 0 {
		ct, err := r.cipher.Encrypt(ctx, payload)
		if err != nil {
			r.log.WarnContext(ctx, "exchange payload not kept", "kind", e.Kind, "err", err.Error())
			if e.ErrorClass == "" {
				e.ErrorClass = "payload_unencrypted"
			}
		}
		e.Payload = ct
	}
	return e
}

// Exchanges lists the log, newest first, without payloads.
func (r *Recorder) Exchanges(ctx context.Context, f store.ExchangeFilter) ([]store.Exchange, error) {
	return r.st.Exchanges(ctx, f)
}

// Payload decrypts the payload of exchange id for the admin client
// adminID. The viewing is recorded first; when that record cannot be
// written nothing is shown.
func (r *Recorder) Payload(ctx context.Context, id int64, adminID string) ([]byte, error) {
	e, err := r.st.ExchangeByID(ctx, id)
	if err != nil {
		return nil, err
	}
	if e.Payload == "" {
		return nil, fmt.Errorf("payload of exchange %d: %w", id, store.ErrNotFound)
	}
	view := store.Exchange{Kind: KindAdmin, Direction: Out, PartnerID: adminID, EpisodeID: e.EpisodeID,
		Refs: []string{fmt.Sprintf("exchange/%d", id)}, Operation: "view payload", Status: "ok"}
	if _, err := r.Record(ctx, view, nil); err != nil {
		return nil, fmt.Errorf("audit payload view: %w", err)
	}
	b, err := r.cipher.Decrypt(ctx, e.Payload)
	if err != nil {
		return nil, fmt.Errorf("payload of exchange %d: %w", id, err)
	}
	return b, nil
}
