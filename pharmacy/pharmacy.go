// Package pharmacy carries ketamine prescriptions to the compounding
// pharmacy and back: the HTTP client that delivers signed SCRIPT messages,
// and the signed callbacks (RxFill and friends) the pharmacy sends in
// return. Rules live in pharmacy/rules, message building in
// pharmacy/script, signing in pharmacy/sign.
package pharmacy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/kapgw/kapgw/pharmacy/script"
	"github.com/kapgw/kapgw/pharmacy/sign"
)

// maxAnswer caps how much of the pharmacy's answer is read.
const maxAnswer = 256 << 10

// ScriptPath is where the pharmacy receives SCRIPT messages.
const ScriptPath = "/script"

// Client delivers signed SCRIPT messages to one pharmacy endpoint.
type Client struct {
	url  string
	host string
	http *http.Client
}

// NewClient returns a client posting to baseURL + ScriptPath with hc, whose
// Timeout bounds each attempt.
func NewClient(baseURL string, hc *http.Client) (*Client, error) {
	u, err := url.Parse(strings.TrimSuffix(baseURL, "/"))
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("pharmacy url: not an absolute http(s) URL")
	}
	return &Client{url: u.String() + ScriptPath, host: u.Host, http: hc}, nil
}

// Outcome is the pharmacy's synchronous answer to a message.
type Outcome struct {
	// Kind is Status, Verify or Error.
	Kind string
	// Code, DescriptionCode and Description come from an Error (or the
	// Status code); they are SCRIPT codes and the pharmacy's text, which
	// must not carry patient data.
	Code            string
	DescriptionCode string
	Description     string
}

// Delivered reports whether the pharmacy took responsibility (Status or
// Verify).
func (o Outcome) Delivered() bool { return o.Kind == "Status" || o.Kind == "Verify" }

// ErrUnknown marks an attempt whose fate is unknown (timeout, connection
// lost, 5xx): it must be retried with the same MessageID, never a new one.
var ErrUnknown = errors.New("delivery unknown")

// Send posts body with its detached signature jws and reads the answer.
// Only an Outcome is final; errors wrapping ErrUnknown are to be retried.
func (c *Client) Send(ctx context.Context, body []byte, jws string) (Outcome, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, bytes.NewReader(body))
	if err != nil {
		return Outcome{}, fmt.Errorf("POST %s%s: %w", c.host, ScriptPath, err)
	}
	req.Header.Set("Content-Type", "application/xml")
	req.Header.Set(sign.Header, jws)
	resp, err := c.http.Do(req)
	if err != nil {
		return Outcome{}, fmt.Errorf("POST %s%s: %w: %w", c.host, ScriptPath, ErrUnknown, err)
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return Outcome{}, fmt.Errorf("POST %s%s: read answer: %w: %w", c.host, ScriptPath, ErrUnknown, err)
	}
	if resp.StatusCode != http.StatusOK {
		return Outcome{}, fmt.Errorf("POST %s%s: status %d: %w", c.host, ScriptPath, resp.StatusCode, ErrUnknown)
	}
	m, err := script.Parse(answer)
	if err != nil {
		return Outcome{}, fmt.Errorf("POST %s%s: answer: %w: %w", c.host, ScriptPath, ErrUnknown, err)
	}
	return outcome(m), nil
}

func outcome(m *script.Message) Outcome {
	switch b := m.Body; {
	case b.Status != nil:
		return Outcome{Kind: "Status", Code: b.Status.Code}
	case b.Verify != nil:
		return Outcome{Kind: "Verify", Code: b.Verify.VerifyStatus.Code}
	case b.Error != nil:
		return Outcome{Kind: "Error", Code: b.Error.Code, DescriptionCode: b.Error.DescriptionCode, Description: b.Error.Description}
	}
	return Outcome{Kind: "Error", Code: "900", Description: "unexpected answer " + m.Body.Kind()}
}
