package fhir

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"
	"github.com/tidwall/gjson"

	"github.com/kapgw/kapgw/internal/fhirvalid"
	"github.com/kapgw/kapgw/pharmacy"
	"github.com/kapgw/kapgw/pharmacy/rules"
)

func TestPrescriptionOutcome(t *testing.T) {
	t.Parallel()
	oo, err := prescriptionOutcome([]pharmacy.Checked{
		{PrescriptionID: "rx1", Findings: []rules.Finding{
			{Code: "refills-limit", Severity: rules.Block, Expression: "prescriptions[0].refills", Message: "at most 5 refills", RuleSet: "2026-01-01"},
			{Code: "interaction-maoi", Severity: rules.Warn, Message: "an MAOI", RuleSet: "2026-01-01"},
		}},
		{PrescriptionID: "rx2", Index: 1, MessageID: "M2"},
	})
	if err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]string{
		"issue.0.severity":     "error",
		"issue.0.expression.0": "prescriptions[0].refills",
		"issue.1.severity":     "warning",
		"issue.2.severity":     "information",
		"issue.2.diagnostics":  "NewRx M2 queued for the pharmacy",
		"issue.0.diagnostics":  "at most 5 refills [refills-limit, rule set 2026-01-01; prescription rx1]",
	} {
		if got := gjson.GetBytes(oo, path).String(); got != want {
			t.Errorf("%s = %q, want %q", path, got, want)
		}
	}
	fhirvalid.New(t).Check(t, oo)
	if none, err := prescriptionOutcome(nil); none != nil || err != nil {
		t.Errorf("no prescriptions: %s, %v", none, err)
	}
}

// callbackErr is a PharmacyCallbacks that answers with a fixed error.
type callbackErr struct{ err error }

func (c callbackErr) Receive(context.Context, string, string, []byte) error { return c.err }

func TestPharmacyCallbackStatus(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		err  error
		want int
	}{
		{nil, http.StatusNoContent},
		{fmt.Errorf("x: %w", pharmacy.ErrCallbackAuth), http.StatusUnauthorized},
		{fmt.Errorf("x: %w", pharmacy.ErrCallbackInvalid), http.StatusBadRequest},
	} {
		e := echo.New()
		e.HTTPErrorHandler = errorHandler(slog.New(slog.NewTextHandler(io.Discard, nil)))
		e.POST("/cb", handlePharmacyCallback(callbackErr{tc.err}))
		rec := httptest.NewRecorder()
		e.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/cb", strings.NewReader(`{}`)))
		if rec.Code != tc.want {
			t.Errorf("Receive error %v: status %d, want %d", tc.err, rec.Code, tc.want)
		}
	}
}
