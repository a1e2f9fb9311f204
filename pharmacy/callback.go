package pharmacy

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// Callback headers: the Unix time the pharmacy signed at, and the hex
// HMAC-SHA256 of timestamp + "." + body under the shared secret.
const (
	TimestampHeader = "X-Pharmacy-Timestamp"
	SignatureHeader = "X-Pharmacy-Signature"
)

// CallbackWindow is how far a callback's timestamp may be from now.
const CallbackWindow = 5 * time.Minute

// Event types and fill statuses the pharmacy reports.
const (
	EventRxFill           = "RxFill"
	EventCancelRxResponse = "CancelRxResponse"
	EventError            = "Error"
	EventRxChangeRequest  = "RxChangeRequest"

	FillDispensed = "dispensed"
	FillShipped   = "shipped"
	FillDelivered = "delivered"
)

// Event is one callback from the pharmacy. The pharmacy API sends it as
// JSON; its fields follow the SCRIPT message it stands for.
type Event struct {
	// EventID is unique per event; repeats are ignored.
	EventID string `json:"eventId"`
	Type    string `json:"type"`
	// FillStatus is dispensed, shipped or delivered for RxFill.
	FillStatus string `json:"fillStatus,omitempty"`
	// RelatesToMessageID is the MessageID of the NewRx or CancelRx.
	RelatesToMessageID    string    `json:"relatesToMessageId"`
	PrescriberOrderNumber string    `json:"prescriberOrderNumber"`
	OccurredAt            time.Time `json:"occurredAt"`
	Quantity              int       `json:"quantity,omitempty"`
	// Refill numbers the fill an RxFill reports: 0 (or absent) the first
	// fill, n the nth refill.
	Refill         int    `json:"refill,omitempty"`
	Carrier        string `json:"carrier,omitempty"`
	TrackingNumber string `json:"trackingNumber,omitempty"`
	// Approved answers a CancelRx.
	Approved bool `json:"approved,omitempty"`
	// Code and Description explain an Error or a change request.
	Code        string `json:"code,omitempty"`
	Description string `json:"description,omitempty"`
}

// SignCallback returns the SignatureHeader value for body sent at ts.
func SignCallback(secret []byte, ts time.Time, body []byte) (timestamp, signature string) {
	timestamp = strconv.FormatInt(ts.Unix(), 10)
	return timestamp, hex.EncodeToString(mac(secret, timestamp, body))
}

func mac(secret []byte, timestamp string, body []byte) []byte {
	h := hmac.New(sha256.New, secret)
	h.Write([]byte(timestamp))
	h.Write([]byte{'.'})
	h.Write(body)
	return h.Sum(nil)
}

// ErrCallbackAuth marks a callback whose signature or timestamp is wrong.
var ErrCallbackAuth = errors.New("callback not authenticated")

// VerifyCallback checks the HMAC of body and that the timestamp is within
// CallbackWindow of now.
func VerifyCallback(secret []byte, timestamp, signature string, body []byte, now time.Time) error {
	sec, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: bad timestamp", ErrCallbackAuth)
	}
	if d := now.Sub(time.Unix(sec, 0)); d > CallbackWindow || d < -CallbackWindow {
		return fmt.Errorf("%w: timestamp outside the %s window", ErrCallbackAuth, CallbackWindow)
	}
	got, err := hex.DecodeString(signature)
	if err != nil || !hmac.Equal(got, mac(secret, timestamp, body)) {
		return fmt.Errorf("%w: bad signature", ErrCallbackAuth)
	}
	return nil
}
