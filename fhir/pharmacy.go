package fhir

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	"github.com/kapgw/kapgw/pharmacy"
	"github.com/kapgw/kapgw/pharmacy/rules"
)

// PharmacyCallbacks receives the compounding pharmacy's callbacks
// (pharmacy.Callbacks). They are authenticated by their HMAC, not by the
// SMART authenticator.
type PharmacyCallbacks interface {
	Receive(ctx context.Context, timestamp, signature string, body []byte) error
}

// maxCallbackBytes caps a callback body.
const maxCallbackBytes = 64 << 10

// handlePharmacyCallback accepts one signed callback: 204 when applied,
// 401 when the HMAC or timestamp is wrong, 400 when it cannot be used.
func handlePharmacyCallback(cb PharmacyCallbacks) echo.HandlerFunc {
	return func(c echo.Context) error {
		body, err := io.ReadAll(io.LimitReader(c.Request().Body, maxCallbackBytes+1))
		if err != nil || len(body) > maxCallbackBytes {
			return newError(http.StatusBadRequest, "invalid", "callback body unreadable or too large")
		}
		h := c.Request().Header
		err = cb.Receive(c.Request().Context(), h.Get(pharmacy.TimestampHeader), h.Get(pharmacy.SignatureHeader), body)
		switch {
		case errors.Is(err, pharmacy.ErrCallbackAuth):
			return newError(http.StatusUnauthorized, "login", "callback signature or timestamp not valid")
		case errors.Is(err, pharmacy.ErrCallbackInvalid):
			return newError(http.StatusBadRequest, "invalid", "callback not usable")
		case err != nil:
			return err
		}
		return c.NoContent(http.StatusNoContent)
	}
}

// prescriptionOutcome reports what intake did with the document's
// prescriptions as an OperationOutcome: an error issue per blocking rule, a
// warning per warning, an information issue per message queued. It is nil
// when the document had no prescription to send.
func prescriptionOutcome(checked []pharmacy.Checked) (json.RawMessage, error) {
	var issues []Issue
	for _, c := range checked {
		for _, f := range c.Findings {
			sev := "warning"
			if f.Severity == rules.Block {
				sev = "error"
			}
			issues = append(issues, Issue{Severity: sev, Code: "business-rule", Expression: f.Expression,
				Diagnostic: f.Message + " [" + f.Code + ", rule set " + f.RuleSet + "; prescription " + c.PrescriptionID + "]"})
		}
		if c.MessageID != "" {
			issues = append(issues, Issue{Severity: "information", Code: "informational",
				Expression: "prescriptions[" + strconv.Itoa(c.Index) + "]",
				Diagnostic: "NewRx " + c.MessageID + " queued for the pharmacy"})
		}
	}
	if len(issues) == 0 {
		return nil, nil
	}
	return outcome(issues)
}
