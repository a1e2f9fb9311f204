package pharmacy

import (
	"context"

	"go.opentelemetry.io/otel/trace"

	"github.com/kapgw/kapgw/internal/store"
)

// Ledger keeps the prescription records (*store.Store): the archive of
// every message sent, the latest rule check and the timeline. The hook
// writes it in the episode's transaction, so the records commit with the
// document that caused them.
type Ledger interface {
	RecordRxTx(ctx context.Context, tx store.Tx, r store.RxRecord) error
	LatestRxMessageTx(ctx context.Context, tx store.Tx, orderID, kind string) (store.RxMessage, bool, error)
}

// AttemptLog records delivery attempts of archived messages (*store.Store).
type AttemptLog interface {
	RecordRxAttempt(ctx context.Context, a store.RxAttempt) error
}

// Steps of the timeline the ledger adds to the exchange-log steps.
const (
	StepWritten        = "written"
	StepChecked        = "checked"
	StepWarned         = "warning"
	StepCancelDenied   = "cancel-denied"
	StepChangeRequest  = "change-requested"
	StepPharmacyError  = "pharmacy-error"
	StepReissued       = "reissued"
	statusQueued       = "queued"
	statusSent         = "sent"
	statusAcceptedMsg  = "accepted"
	statusFailedMsg    = "failed"
	statusUnknownMsg   = "unknown"
	messageNewRx       = "NewRx"
	messageCancelRx    = "CancelRx"
	checkDetailBlocked = "blocked"
	checkDetailClear   = "clear"
	checkDetailWarned  = "warned"
)

// traceID is the id of the trace ctx is in, "" outside one.
func traceID(ctx context.Context) string {
	if sc := trace.SpanContextFromContext(ctx); sc.HasTraceID() {
		return sc.TraceID().String()
	}
	return ""
}

// nopLedger records nothing: the hook without a store-backed ledger.
type nopLedger struct{}

func (nopLedger) RecordRxTx(context.Context, store.Tx, store.RxRecord) error { return nil }

func (nopLedger) LatestRxMessageTx(_ context.Context, _ store.Tx, orderID, kind string) (store.RxMessage, bool, error) {
	return store.RxMessage{}, false, nil
}

// nopAttempts records nothing.
type nopAttempts struct{}

func (nopAttempts) RecordRxAttempt(context.Context, store.RxAttempt) error { return nil }
