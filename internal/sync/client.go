package sync

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	gosync "sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/kapgw/kapgw/internal/store"
)

// StatusError is a partner's non-2xx answer: method, host and status, never
// a body. A transaction-response entry with a non-2xx status is one too.
type StatusError struct {
	Op         string
	Host       string
	Status     int
	RetryAfter time.Duration // from Retry-After on 429 and 503
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("%s %s: status %d", e.Op, e.Host, e.Status)
}

// conflict reports whether err is a partner's 409 or 412.
func conflict(err error) bool {
	var se *StatusError
	return errors.As(err, &se) && (se.Status == http.StatusConflict || se.Status == http.StatusPreconditionFailed)
}

// attemptTimeout bounds one request to a partner, token or FHIR.
const attemptTimeout = 20 * time.Second

// partnerClient is the one HTTP client of one partner destination: a
// guarded dialer, its own token or client certificate, concurrency and
// rate limit.
type partnerClient struct {
	dest    store.Destination
	host    string
	secrets Resolver
	wrap    func(http.RoundTripper) http.RoundTripper
	tokens  *tokenSource // nil unless auth is smart or secret
	slots   chan struct{}
	limit   *rate.Limiter

	mu       gosync.Mutex
	http     *http.Client
	material tlsMaterial // what http was built with
}

func newPartnerClient(d store.Destination, secrets Resolver, now func() time.Time, wrap func(http.RoundTripper) http.RoundTripper) (*partnerClient, error) {
	u, err := url.Parse(d.BaseURL)
	if err != nil {
		return nil, fmt.Errorf("destination %s: %w", d.PartnerID, ErrAddress)
	}
	c := &partnerClient{dest: d, host: u.Host, secrets: secrets, wrap: wrap,
		slots: make(chan struct{}, max(d.Concurrency, 1)),
		limit: rate.NewLimiter(rate.Limit(max(d.Rate, 1)), max(d.Rate, 1))}
	if d.Auth == "smart" || d.Auth == "secret" {
		c.tokens = &tokenSource{dest: d, secrets: secrets, client: c.httpClient, now: now}
	}
	return c, nil
}

// httpClient returns the client for the current TLS material: the client
// certificate, key and CA bundle are read through the resolver (which
// caches and notices rotations) and the transport is rebuilt when any of
// them changed, so a rotated certificate is presented on the next
// connection without a restart.
func (c *partnerClient) httpClient(ctx context.Context) (*http.Client, error) {
	m, err := resolveTLS(ctx, c.dest, c.secrets)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.http != nil && m == c.material {
		return c.http, nil
	}
	tc, err := m.config()
	if err != nil {
		return nil, fmt.Errorf("destination %s: %w", c.dest.PartnerID, err)
	}
	tr := guardedTransport(Allow(c.dest.Allow))
	tr.TLSClientConfig = tc
	var rt http.RoundTripper = tr
	if c.wrap != nil {
		rt = c.wrap(rt)
	}
	if c.http != nil {
		c.http.CloseIdleConnections()
	}
	c.http = &http.Client{
		Transport: rt,
		Timeout:   attemptTimeout,
		// The token never follows a redirect to another host; FHIR
		// writes are not redirected at all.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	c.material = m
	return c.http, nil
}

// transaction posts a transaction Bundle and returns the answer's body
// and status.
func (c *partnerClient) transaction(ctx context.Context, bundle []byte) ([]byte, int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.dest.BaseURL, bytes.NewReader(bundle))
	if err != nil {
		return nil, 0, fmt.Errorf("transaction request: %w", err)
	}
	req.Header.Set("Content-Type", "application/fhir+json")
	return c.send(ctx, "POST transaction", req)
}

// send sends req with the client's slots, rate, token and guarded
// transport and returns the answer's body and status. The token goes to
// the destination's host only; a non-2xx answer is a *StatusError (a 401
// also drops the cached token).
func (c *partnerClient) send(ctx context.Context, op string, req *http.Request) ([]byte, int, error) {
	if req.URL.Host != c.host {
		return nil, 0, fmt.Errorf("%w: %s off the partner's host", ErrAddress, op)
	}
	select {
	case c.slots <- struct{}{}:
		defer func() { <-c.slots }()
	case <-ctx.Done():
		return nil, 0, ctx.Err()
	}
	if err := c.limit.Wait(ctx); err != nil {
		return nil, 0, err
	}
	hc, err := c.httpClient(ctx)
	if err != nil {
		return nil, 0, err
	}
	req.Header.Set("Accept", "application/fhir+json")
	if c.tokens != nil {
		tok, err := c.tokens.Token(ctx)
		if err != nil {
			return nil, 0, err
		}
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, 0, fmt.Errorf("%s %s: %w", op, c.host, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 32<<20))
	if err != nil {
		return nil, resp.StatusCode, fmt.Errorf("%s %s: read answer: %w", op, c.host, err)
	}
	if resp.StatusCode/100 != 2 {
		if resp.StatusCode == http.StatusUnauthorized && c.tokens != nil {
			c.tokens.Forget()
		}
		return nil, resp.StatusCode, &StatusError{Op: op, Host: c.host, Status: resp.StatusCode, RetryAfter: retryAfter(resp, time.Now())}
	}
	return body, resp.StatusCode, nil
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

// ErrCredentials reports partner credentials (a key, secret or certificate)
// that cannot be read or used.
var ErrCredentials = errors.New("partner credentials unusable")

// tlsMaterial is a destination's TLS settings as resolved from Vault: the
// PEM client certificate and key (auth mtls) and the PEM CA bundle of the
// partner's server (empty: the system roots).
type tlsMaterial struct {
	cert, key, ca string
}

// resolveTLS reads the destination's TLS references.
func resolveTLS(ctx context.Context, d store.Destination, secrets Resolver) (tlsMaterial, error) {
	var m tlsMaterial
	for _, r := range []struct {
		ref  string
		into *string
		use  bool
	}{{d.TLSCertRef, &m.cert, d.Auth == "mtls"}, {d.TLSKeyRef, &m.key, d.Auth == "mtls"}, {d.CARef, &m.ca, d.CARef != ""}} {
		if !r.use {
			continue
		}
		v, err := secrets.Resolve(ctx, r.ref)
		if err != nil {
			return m, fmt.Errorf("%w: %w", ErrCredentials, err)
		}
		*r.into = v
	}
	return m, nil
}

// config is the TLS client configuration: at least TLS 1.2, the client
// certificate when there is one, the CA bundle when there is one.
func (m tlsMaterial) config() (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if m.cert != "" || m.key != "" {
		pair, err := tls.X509KeyPair([]byte(m.cert), []byte(m.key))
		if err != nil {
			return nil, fmt.Errorf("%w: client certificate and key do not form a pair", ErrCredentials)
		}
		tc.Certificates = []tls.Certificate{pair}
	}
	if m.ca != "" {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM([]byte(m.ca)) {
			return nil, fmt.Errorf("%w: CA bundle holds no PEM certificate", ErrCredentials)
		}
		tc.RootCAs = pool
	}
	return tc, nil
}
