package sync

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"golang.org/x/time/rate"

	"github.com/kapgw/kapgw/internal/store"
)

// StatusError is a partner's non-2xx answer: method, host and status, never
// a body.
type StatusError struct {
	Op         string
	Host       string
	Status     int
	RetryAfter time.Duration // from Retry-After on 429 and 503
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("%s %s: status %d", e.Op, e.Host, e.Status)
}

// partnerClient is the one HTTP client of one partner destination: a
// guarded dialer, its own token, concurrency and rate limit.
type partnerClient struct {
	dest   store.Destination
	host   string
	http   *http.Client
	tokens *tokenSource // nil for auth none
	slots  chan struct{}
	limit  *rate.Limiter
}

func newPartnerClient(d store.Destination, secrets Resolver, now func() time.Time, wrap func(http.RoundTripper) http.RoundTripper) (*partnerClient, error) {
	u, err := url.Parse(d.BaseURL)
	if err != nil {
		return nil, fmt.Errorf("destination %s: %w", d.PartnerID, ErrAddress)
	}
	var rt http.RoundTripper = guardedTransport(Allow(d.Allow))
	if wrap != nil {
		rt = wrap(rt)
	}
	hc := &http.Client{
		Transport: rt,
		Timeout:   60 * time.Second,
		// The token never follows a redirect to another host; FHIR
		// writes are not redirected at all.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	c := &partnerClient{dest: d, host: u.Host, http: hc,
		slots: make(chan struct{}, max(d.Concurrency, 1)),
		limit: rate.NewLimiter(rate.Limit(max(d.Rate, 1)), max(d.Rate, 1))}
	if d.Auth != "" && d.Auth != "none" {
		c.tokens = &tokenSource{dest: d, secrets: secrets, client: hc, now: now}
	}
	return c, nil
}

// transaction posts a transaction Bundle and returns the answer's body.
func (c *partnerClient) transaction(ctx context.Context, bundle []byte) ([]byte, error) {
	select {
	case c.slots <- struct{}{}:
		defer func() { <-c.slots }()
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if err := c.limit.Wait(ctx); err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.dest.BaseURL, bytes.NewReader(bundle))
	if err != nil {
		return nil, fmt.Errorf("transaction request: %w", err)
	}
	req.Header.Set("Content-Type", "application/fhir+json")
	req.Header.Set("Accept", "application/fhir+json")
	if c.tokens != nil {
		tok, err := c.tokens.Token(ctx)
		if err != nil {
			return nil, err
		}
		if req.URL.Host != c.host {
			return nil, errors.New("token refused for another host")
		}
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("POST transaction %s: %w", c.host, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 32<<20))
	if err != nil {
		return nil, fmt.Errorf("POST transaction %s: read answer: %w", c.host, err)
	}
	if resp.StatusCode/100 != 2 {
		if resp.StatusCode == http.StatusUnauthorized && c.tokens != nil {
			c.tokens.Forget()
		}
		return nil, &StatusError{Op: "POST transaction", Host: c.host, Status: resp.StatusCode, RetryAfter: retryAfter(resp, time.Now())}
	}
	return body, nil
}

// retryAfter reads Retry-After (seconds or an HTTP date) on 429 and 503.
func retryAfter(resp *http.Response, now time.Time) time.Duration {
	if resp.StatusCode != http.StatusTooManyRequests && resp.StatusCode != http.StatusServiceUnavailable {
		return 0
	}
	v := resp.Header.Get("Retry-After")
	if s, err := strconv.Atoi(v); err == nil && s >= 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}
