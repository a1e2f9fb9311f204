package auth

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/kapgw/kapgw/internal/secrets"
	"github.com/kapgw/kapgw/internal/store"
)

// SMART Backend Services constants (SMART App Launch 2.x, RFC 7523).
const (
	GrantClientCredentials = "client_credentials"
	AssertionTypeJWTBearer = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
	// MaxAssertionLifetime is how far ahead a client assertion's exp may be.
	MaxAssertionLifetime = 5 * time.Minute
	// MaxTokenLifetime is the longest an access token lives.
	MaxTokenLifetime = 5 * time.Minute
	// tokenType is the JWS typ of access tokens (RFC 9068), so that no other
	// JWT the gateway might sign passes as one.
	tokenType = "at+jwt"
)

// assertionAlgs are the only algorithms a client assertion may use; go-jose
// refuses every other (none, HS256, ...) before looking at a key.
var assertionAlgs = []jose.SignatureAlgorithm{jose.RS384, jose.ES384}

// OAuthError is a token endpoint failure in RFC 6749 section 5.2 form. Its
// Description never carries the assertion or anything the client sent.
type OAuthError struct {
	Status      int    `json:"-"`
	Code        string `json:"error"`
	Description string `json:"error_description,omitempty"`
}

func (e *OAuthError) Error() string { return e.Code + ": " + e.Description }

func oauthErr(status int, code, desc string) *OAuthError {
	return &OAuthError{Status: status, Code: code, Description: desc}
}

func invalidClient(desc string) *OAuthError {
	return oauthErr(http.StatusUnauthorized, "invalid_client", desc)
}

// Token is a successful token response.
type Token struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int    `json:"expires_in"`
	Scope       string `json:"scope"`
}

// AssertionIDs remembers used client assertion ids; *store.Store is one.
type AssertionIDs interface {
	UseAssertionID(ctx context.Context, clientID, jti string, exp time.Time) error
}

// IssuerConfig names this deployment.
type IssuerConfig struct {
	// URL is this deployment's public base URL: the iss and aud of its
	// access tokens. A token of another deployment names another URL.
	URL string
	// Lifetime of access tokens, at most MaxTokenLifetime.
	Lifetime time.Duration
}

// TokenURL is where clients get tokens: the aud of their assertions.
func (c IssuerConfig) TokenURL() string { return strings.TrimSuffix(c.URL, "/") + "/auth/token" }

// Issuer is the token endpoint of SMART Backend Services: it authenticates
// a client by its private_key_jwt assertion and signs a short-lived access
// token with the gateway's Signer. There are no refresh tokens.
type Issuer struct {
	reg    Registry
	ids    AssertionIDs
	keys   *Keys
	signer secrets.Signer
	cfg    IssuerConfig
	now    func() time.Time
}

// NewIssuer returns an Issuer. reg should be the store itself (not a
// cache), so that a disabled client gets no token from the next request on.
func NewIssuer(reg Registry, ids AssertionIDs, keys *Keys, signer secrets.Signer, cfg IssuerConfig, now func() time.Time) *Issuer {
	if cfg.Lifetime <= 0 || cfg.Lifetime > MaxTokenLifetime {
		cfg.Lifetime = MaxTokenLifetime
	}
	return &Issuer{reg: reg, ids: ids, keys: keys, signer: signer, cfg: cfg, now: now}
}

// TokenURL is the URL of the token endpoint.
func (is *Issuer) TokenURL() string { return is.cfg.TokenURL() }

// Token answers a token request (the form of POST /auth/token). Refusals
// are *OAuthError; other errors are the gateway's own failures.
func (is *Issuer) Token(ctx context.Context, form url.Values) (Token, error) {
	if g := form.Get("grant_type"); g != GrantClientCredentials {
		if g == "" {
			return Token{}, oauthErr(http.StatusBadRequest, "invalid_request", "grant_type is required")
		}
		return Token{}, oauthErr(http.StatusBadRequest, "unsupported_grant_type", "only client_credentials is supported")
	}
	if form.Get("client_assertion_type") != AssertionTypeJWTBearer || form.Get("client_assertion") == "" {
		return Token{}, oauthErr(http.StatusBadRequest, "invalid_request",
			"client_assertion_type must be "+AssertionTypeJWTBearer+" with a client_assertion")
	}
	scope := form.Get("scope")
	if strings.TrimSpace(scope) == "" {
		return Token{}, oauthErr(http.StatusBadRequest, "invalid_scope", "scope is required")
	}
	client, err := is.authenticate(ctx, form.Get("client_assertion"))
	if err != nil {
		return Token{}, err
	}
	if id := form.Get("client_id"); id != "" && id != client.ID {
		return Token{}, invalidClient("client_id differs from the assertion's issuer")
	}
	granted := grantTo(client, strings.Fields(scope))
	if len(granted) == 0 {
		return Token{}, oauthErr(http.StatusBadRequest, "invalid_scope", "none of the requested scopes may be granted to this client")
	}
	tok, err := is.sign(ctx, client.ID, granted)
	if err != nil {
		return Token{}, err
	}
	return Token{AccessToken: tok, TokenType: "bearer", ExpiresIn: int(is.cfg.Lifetime / time.Second),
		Scope: strings.Join(granted, " ")}, nil
}

// authenticate verifies a client assertion and returns its client.
func (is *Issuer) authenticate(ctx context.Context, assertion string) (store.Client, error) {
	tok, err := jwt.ParseSigned(assertion, assertionAlgs)
	if err != nil || len(tok.Headers) != 1 {
		return store.Client{}, invalidClient("client_assertion must be a JWS signed with RS384 or ES384")
	}
	h := tok.Headers[0]
	if h.KeyID == "" {
		return store.Client{}, invalidClient("client_assertion header has no kid")
	}
	var unverified jwt.Claims
	if err := tok.UnsafeClaimsWithoutVerification(&unverified); err != nil || unverified.Issuer == "" {
		return store.Client{}, invalidClient("client_assertion has no iss")
	}
	client, err := is.reg.Client(ctx, unverified.Issuer)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return store.Client{}, invalidClient("unknown client")
	case err != nil:
		return store.Client{}, fmt.Errorf("load client: %w", err)
	case client.Disabled:
		return store.Client{}, invalidClient("client is disabled")
	}
	keys, err := is.keys.Find(ctx, client, h.KeyID)
	if err != nil {
		return store.Client{}, invalidClient("the client's keys could not be loaded")
	}
	if len(keys) != 1 {
		return store.Client{}, invalidClient("kid must match exactly one registered key")
	}
	key := keys[0]
	if key.Algorithm != "" && key.Algorithm != h.Algorithm {
		return store.Client{}, invalidClient("alg differs from the registered key's alg")
	}
	var claims jwt.Claims
	if err := tok.Claims(key.Key, &claims); err != nil {
		return store.Client{}, invalidClient("client_assertion signature is invalid")
	}
	exp, err := is.checkClaims(client.ID, claims)
	if err != nil {
		return store.Client{}, err
	}
	switch err := is.ids.UseAssertionID(ctx, client.ID, claims.ID, exp); {
	case errors.Is(err, store.ErrReplay):
		return store.Client{}, invalidClient("client_assertion jti was already used")
	case err != nil:
		return store.Client{}, fmt.Errorf("record assertion id: %w", err)
	}
	return client, nil
}

// checkClaims applies RFC 7523 section 3 and SMART's limits to a verified
// assertion and returns its expiry.
func (is *Issuer) checkClaims(clientID string, c jwt.Claims) (time.Time, error) {
	now := is.now()
	switch {
	case c.Issuer != clientID || c.Subject != clientID:
		return time.Time{}, invalidClient("iss and sub must both be the client id")
	case !c.Audience.Contains(is.cfg.TokenURL()):
		return time.Time{}, invalidClient("aud must be the token URL")
	case c.Expiry == nil:
		return time.Time{}, invalidClient("exp is required")
	case c.ID == "" || len(c.ID) > 255:
		return time.Time{}, invalidClient("jti is required (at most 255 characters)")
	}
	exp := c.Expiry.Time()
	switch {
	case !now.Before(exp):
		return time.Time{}, invalidClient("client_assertion has expired")
	case exp.Sub(now) > MaxAssertionLifetime:
		return time.Time{}, invalidClient("exp must be at most 5 minutes ahead")
	case c.NotBefore != nil && c.NotBefore.Time().After(now.Add(time.Minute)):
		return time.Time{}, invalidClient("client_assertion is not valid yet")
	}
	return exp, nil
}

// accessClaims are the claims of an access token (RFC 9068).
type accessClaims struct {
	jwt.Claims
	ClientID string `json:"client_id"`
	Scope    string `json:"scope"`
}

// sign makes an access token: a compact JWS signed by the gateway's Signer
// (Vault Transit, or the dev store's key), which never hands out the key.
func (is *Issuer) sign(ctx context.Context, clientID string, scopes []string) (string, error) {
	now := is.now()
	var jti [16]byte
	_, _ = rand.Read(jti[:])
	claims := accessClaims{
		Claims: jwt.Claims{
			Issuer: is.cfg.URL, Subject: clientID, Audience: jwt.Audience{is.cfg.URL},
			IssuedAt: jwt.NewNumericDate(now), NotBefore: jwt.NewNumericDate(now),
			Expiry: jwt.NewNumericDate(now.Add(is.cfg.Lifetime)), ID: hex.EncodeToString(jti[:]),
		},
		ClientID: clientID,
		Scope:    strings.Join(scopes, " "),
	}
	header, err := json.Marshal(map[string]string{"alg": is.signer.Algorithm(), "kid": is.signer.KeyID(), "typ": tokenType})
	if err != nil {
		return "", fmt.Errorf("encode token header: %w", err)
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", fmt.Errorf("encode token claims: %w", err)
	}
	enc := base64.RawURLEncoding
	input := enc.EncodeToString(header) + "." + enc.EncodeToString(payload)
	sig, err := is.signer.Sign(ctx, []byte(input))
	if err != nil {
		return "", fmt.Errorf("sign access token: %w", err)
	}
	return input + "." + enc.EncodeToString(sig), nil
}
