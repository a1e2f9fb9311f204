package sync

import (
	"context"
	"crypto"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	gosync "sync"
	"time"

	"github.com/kapgw/kapgw/internal/auth"
	"github.com/kapgw/kapgw/internal/store"
)

// Resolver reads a secret by its vault: or local: reference.
type Resolver interface {
	Resolve(ctx context.Context, ref string) (string, error)
}

// tokenSource fetches and caches a partner's access token with the
// partner's credentials.
type tokenSource struct {
	dest    store.Destination
	secrets Resolver
	client  func(context.Context) (*http.Client, error)
	now     func() time.Time

	mu     gosync.Mutex
	token  string
	expiry time.Time
}

// Token returns a cached token until shortly before it expires.
func (t *tokenSource) Token(ctx context.Context) (string, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.token != "" && t.now().Before(t.expiry) {
		return t.token, nil
	}
	tok, life, err := t.fetch(ctx)
	if err != nil {
		return "", err
	}
	margin := min(30*time.Second, life/5)
	t.token, t.expiry = tok, t.now().Add(life-margin)
	return tok, nil
}

// Forget drops the cached token after the partner refused it.
func (t *tokenSource) Forget() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.token = ""
}

func (t *tokenSource) fetch(ctx context.Context) (string, time.Duration, error) {
	secret, err := t.secrets.Resolve(ctx, t.dest.SecretRef)
	if err != nil {
		return "", 0, fmt.Errorf("%w: %w", ErrCredentials, err)
	}
	form := url.Values{"grant_type": {"client_credentials"}}
	if t.dest.Scope != "" {
		form.Set("scope", t.dest.Scope)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.dest.TokenURL, nil)
	if err != nil {
		return "", 0, fmt.Errorf("token request: %w", err)
	}
	switch t.dest.Auth {
	case "smart":
		key, err := parseKey(secret)
		if err != nil {
			return "", 0, err
		}
		a, err := auth.SignAssertion(key, t.dest.KeyID, t.dest.ClientID, t.dest.TokenURL, t.now(), 5*time.Minute)
		if err != nil {
			return "", 0, err
		}
		form.Set("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
		form.Set("client_assertion", a)
	case "secret":
		req.SetBasicAuth(url.QueryEscape(t.dest.ClientID), url.QueryEscape(secret))
	default:
		return "", 0, fmt.Errorf("unknown auth %q", t.dest.Auth)
	}
	req.Body = io.NopCloser(strings.NewReader(form.Encode()))
	req.ContentLength = int64(len(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	hc, err := t.client(ctx)
	if err != nil {
		return "", 0, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return "", 0, fmt.Errorf("POST token %s: %w", req.URL.Host, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", 0, &StatusError{Op: "token", Host: req.URL.Host, Status: resp.StatusCode}
	}
	var body struct {
		AccessToken string `json:"access_token"`
		ExpiresIn   int    `json:"expires_in"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&body); err != nil || body.AccessToken == "" {
		return "", 0, fmt.Errorf("POST token %s: unusable answer", req.URL.Host)
	}
	life := time.Duration(max(body.ExpiresIn, 60)) * time.Second
	return body.AccessToken, life, nil
}

// parseKey reads a PEM private key (PKCS #8, SEC 1 or PKCS #1).
func parseKey(pemText string) (crypto.Signer, error) {
	b, _ := pem.Decode([]byte(pemText))
	if b == nil {
		return nil, fmt.Errorf("%w: partner key is not PEM", ErrCredentials)
	}
	if k, err := x509.ParsePKCS8PrivateKey(b.Bytes); err == nil {
		if s, ok := k.(crypto.Signer); ok {
			return s, nil
		}
	}
	if k, err := x509.ParseECPrivateKey(b.Bytes); err == nil {
		return k, nil
	}
	if k, err := x509.ParsePKCS1PrivateKey(b.Bytes); err == nil {
		return k, nil
	}
	return nil, fmt.Errorf("%w: partner key is not a private key", ErrCredentials)
}
