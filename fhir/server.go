// Package fhir is kapgw's HTTP surface: the FHIR R4 REST API partner EHRs
// use, the KAP intake API the clinic platform uses, and the health endpoints.
// It is the only package that knows echo; everything it serves comes from
// small interfaces satisfied by the intake service and the store.
package fhir

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/kapgw/kapgw/internal/intake"
	"github.com/kapgw/kapgw/internal/store"
)

const (
	mimeFHIRJSON = "application/fhir+json; charset=utf-8"
	mimeJSON     = "application/json; charset=utf-8"
)

// Intake is what the intake API needs of the intake service.
type Intake interface {
	Put(ctx context.Context, id string, body []byte) (intake.Result, error)
	Preview(body []byte) ([][]byte, error)
	Document(ctx context.Context, id string) ([]byte, error)
	Current(ctx context.Context, id string) ([]store.Version, error)
}

// Reader reads stored resources by version (a read of the current version
// goes through Searcher.ReadVisible, which checks access in the same query).
type Reader interface {
	VRead(ctx context.Context, typ, id string, versionID int64) (store.Version, error)
}

// Checker reports whether a dependency is ready to serve.
type Checker interface {
	Ready(ctx context.Context) error
}

// Options are the dependencies and settings of the HTTP surface.
type Options struct {
	Log          *slog.Logger
	Intake       Intake
	Reader       Reader
	Search       Searcher // nil: the Reader, if it can search
	Ready        Checker
	Auth         Authenticator // required: nil refuses every guarded route (401)
	Tokens       Tokens        // the SMART token endpoint; nil: no /auth/token
	RateLimits   RateLimits
	MaxBodyBytes int64
	Now          func() time.Time
	Telemetry    Telemetry         // zero: no tracing, no metrics
	Pharmacy     PharmacyCallbacks // nil: no pharmacy callback endpoint
	Exchanges    ExchangeLog       // nil: no exchange log, no /admin/v1/exchanges
	Audit        Audit             // zero: no AuditEvents
}

// NewHandler returns the whole HTTP API as one http.Handler.
func NewHandler(o Options) http.Handler {
	e := echo.New()
	e.HideBanner = true
	e.HidePort = true
	e.HTTPErrorHandler = errorHandler(o.Log)
	e.Use(traceRequests(o.Telemetry), recordExchanges(o.Log, o.Exchanges, o.MaxBodyBytes), requestIDMiddleware(), accessLog(o.Log), recoverer(o.Log), noStore(), auditAccess(o.Audit.Writer))
	o = withAuthDefaults(o)
	routes(e, o)
	return e
}
