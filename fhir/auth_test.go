package fhir_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kapgw/kapgw/fhir"
	"github.com/kapgw/kapgw/internal/auth"
	"github.com/kapgw/kapgw/internal/secrets"
	"github.com/kapgw/kapgw/internal/store"
)

// clinicScopes are what the test clinic client may do: write and read
// episodes, and read every FHIR resource.
const clinicScopes = "kap/episodes.write kap/episodes.read system/*.rs"

// startAuthed starts the HTTP API built from o on loopback with real SMART
// Backend Services authentication over st: a dev signer, the token endpoint
// and the verifier. It registers a clinic client, gets a token through
// POST /auth/token, and makes srv.Client() send it with every request.
func startAuthed(tb testing.TB, st *store.Store, o fhir.Options) *httptest.Server {
	tb.Helper()
	return startAuthedCaching(tb, st, o, 0)
}

// benchClientCache is how long benchmarks cache a client's registry entry:
// kapgw serve's default --client-cache, so that a benchmarked request pays
// what a served one does. Tests cache nothing, so that a disabled or
// changed client takes effect at once.
const benchClientCache = 2 * time.Second

// startAuthedCaching is startAuthed with the verifier caching registry
// entries for clientCache.
func startAuthedCaching(tb testing.TB, st *store.Store, o fhir.Options, clientCache time.Duration) *httptest.Server {
	tb.Helper()
	srv := httptest.NewUnstartedServer(nil)
	base := "http://" + srv.Listener.Addr().String()
	signer := devSigner(tb)
	cfg := auth.IssuerConfig{URL: base, Lifetime: 5 * time.Minute}
	o.Tokens = auth.NewIssuer(st, st, auth.NewKeys(time.Now), signer, cfg, time.Now)
	o.Auth = auth.NewVerifier(auth.NewClients(st, clientCache, time.Now), signer, base, time.Now)
	srv.Config.Handler = fhir.NewHandler(o)
	srv.Start()
	tb.Cleanup(srv.Close)
	key := registerClient(tb, st, "clinic-platform", auth.KindClinic, strings.Fields(clinicScopes), nil, 1_000_000)
	tok := token(tb, srv, "clinic-platform", key, clinicScopes)
	srv.Client().Transport = &bearerTransport{base: srv.Client().Transport, token: tok}
	return srv
}

// devSigner is a development ES384 signer in a fresh directory.
func devSigner(tb testing.TB) secrets.Signer {
	tb.Helper()
	ds, err := secrets.OpenDevStore(context.Background(), slog.New(slog.NewTextHandler(io.Discard, nil)),
		filepath.Join(tb.TempDir(), "secrets"), "token")
	if err != nil {
		tb.Fatalf("dev store: %v", err)
	}
	s, err := ds.Signer("token")
	if err != nil {
		tb.Fatalf("dev signer: %v", err)
	}
	return s
}

// registerClient registers a client with a fresh P-384 key (kid "k1") and
// returns the key.
func registerClient(tb testing.TB, st *store.Store, id string, kind auth.Kind, scopes, orgs []string, rate int) *ecdsa.PrivateKey {
	tb.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	jwks, err := auth.PublicJWKS("k1", key)
	if err != nil {
		tb.Fatal(err)
	}
	c := store.Client{ID: id, Name: id, Kind: string(kind), JWKS: jwks, Scopes: scopes, Orgs: orgs, Rate: rate}
	if err := st.AddClient(context.Background(), c); err != nil {
		tb.Fatalf("register %s: %v", id, err)
	}
	return key
}

// tokenResponse is the body of POST /auth/token, success or OAuth error.
type tokenResponse struct {
	AccessToken string `json:"access_token"`
	Scope       string `json:"scope"`
	ExpiresIn   int    `json:"expires_in"`
	Error       string `json:"error"`
}

// requestToken posts a token request signed by key and returns the status
// and body.
func requestToken(tb testing.TB, srv *httptest.Server, clientID string, key *ecdsa.PrivateKey, scope string) (int, tokenResponse) {
	tb.Helper()
	tokenURL := srv.URL + "/auth/token"
	a, err := auth.SignAssertion(key, "k1", clientID, tokenURL, time.Now(), 4*time.Minute)
	if err != nil {
		tb.Fatal(err)
	}
	form := url.Values{"grant_type": {"client_credentials"}, "client_assertion_type": {auth.AssertionTypeJWTBearer},
		"client_assertion": {a}, "scope": {scope}}
	resp, err := http.PostForm(tokenURL, form)
	if err != nil {
		tb.Fatalf("token request: %v", err)
	}
	defer resp.Body.Close()
	var out tokenResponse
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		tb.Fatalf("token response: %v", err)
	}
	return resp.StatusCode, out
}

// token gets an access token or fails the test.
func token(tb testing.TB, srv *httptest.Server, clientID string, key *ecdsa.PrivateKey, scope string) string {
	tb.Helper()
	status, out := requestToken(tb, srv, clientID, key, scope)
	if status != http.StatusOK || out.AccessToken == "" {
		tb.Fatalf("token for %s: status %d, error %q", clientID, status, out.Error)
	}
	return out.AccessToken
}

// bearerTransport adds an access token to requests that carry none.
type bearerTransport struct {
	base  http.RoundTripper
	token string
}

func (b *bearerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Header.Get("Authorization") == "" {
		r = r.Clone(r.Context())
		r.Header.Set("Authorization", "Bearer "+b.token)
	}
	return b.base.RoundTrip(r)
}
