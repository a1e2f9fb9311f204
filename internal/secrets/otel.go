package secrets

import (
	"context"
	"fmt"
	"net/http"
	"strconv"

	"github.com/hashicorp/vault/api"
)

// Instrument routes every later call to Vault (KV reads, Transit signing,
// token renewal and re-login) through wrap, which the gateway uses to add a
// client span and a traceparent header, and reports each failed call to
// onError with a short class ("transport", "status_503"), never a path or a
// message. Call it once, before Run and before the client is shared.
func (c *Client) Instrument(wrap func(http.RoundTripper) http.RoundTripper, onError func(ctx context.Context, class string)) error {
	cfg := c.api.CloneConfig()
	base := cfg.HttpClient.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	if onError != nil {
		base = errorCounter{next: base, report: onError}
	}
	if wrap != nil {
		base = wrap(base)
	}
	cfg.HttpClient.Transport = base
	ac, err := api.NewClient(cfg)
	if err != nil {
		return fmt.Errorf("instrument vault client for %s: %w", c.host, err)
	}
	// As in Connect: nothing comes from the process environment.
	ac.ClearNamespace()
	ac.SetToken(c.api.Token())
	c.api = ac
	return nil
}

// errorCounter reports failed round trips: transport errors, 429 and 5xx
// (unreachable, sealed, overloaded) and refusals (403).
type errorCounter struct {
	next   http.RoundTripper
	report func(ctx context.Context, class string)
}

func (e errorCounter) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := e.next.RoundTrip(r)
	switch {
	case err != nil:
		e.report(r.Context(), "transport")
	case resp.StatusCode == http.StatusForbidden, resp.StatusCode == http.StatusTooManyRequests, resp.StatusCode >= 500:
		e.report(r.Context(), "status_"+strconv.Itoa(resp.StatusCode))
	}
	return resp, err
}
