package auth_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/kapgw/kapgw/internal/auth"
	"github.com/kapgw/kapgw/internal/secrets"
	"github.com/kapgw/kapgw/internal/store"
)

const deployment = "https://kapgw.test"

// env is one deployment: a migrated SQLite store, a dev signer, an Issuer
// and a Verifier.
type env struct {
	st       *store.Store
	issuer   *auth.Issuer
	verifier *auth.Verifier
	tokenURL string
}

func newEnv(t *testing.T, url string) *env { return newEnvURL(t, url) }

func newEnvTB(tb testing.TB) *env { return newEnvURL(tb, deployment) }

func newEnvURL(t testing.TB, url string) *env {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	st, err := store.Open(ctx, store.Config{DataDir: filepath.Join(dir, "data")}, time.Now)
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { _ = st.Close() })
	if err := st.Migrate(ctx); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	ds, err := secrets.OpenDevStore(ctx, slog.New(slog.NewTextHandler(io.Discard, nil)), filepath.Join(dir, "secrets"), "token")
	if err != nil {
		t.Fatalf("dev store: %v", err)
	}
	signer, err := ds.Signer("token")
	if err != nil {
		t.Fatalf("signer: %v", err)
	}
	cfg := auth.IssuerConfig{URL: url, Lifetime: 5 * time.Minute}
	return &env{
		st:       st,
		issuer:   auth.NewIssuer(st, st, auth.NewKeys(time.Now), signer, cfg, time.Now),
		verifier: auth.NewVerifier(auth.NewClients(st, 0, time.Now), signer, url, time.Now),
		tokenURL: cfg.TokenURL(),
	}
}

// register adds a client with the given keys (kid -> key) and returns it.
func (e *env) register(t testing.TB, c store.Client, keys map[string]crypto.Signer) {
	t.Helper()
	set := jose.JSONWebKeySet{}
	for kid, k := range keys {
		set.Keys = append(set.Keys, jose.JSONWebKey{Key: k.Public(), KeyID: kid})
	}
	b, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	c.JWKS = b
	if c.Rate == 0 {
		c.Rate = 10
	}
	if err := e.st.AddClient(context.Background(), c); err != nil {
		t.Fatalf("add client: %v", err)
	}
}

func ecKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func rsaKey(t testing.TB) *rsa.PrivateKey {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// claims are the assertion claims of a well-formed request by id.
func (e *env) claims(id string) map[string]any {
	now := time.Now()
	return map[string]any{"iss": id, "sub": id, "aud": e.tokenURL, "exp": now.Add(4 * time.Minute).Unix(),
		"iat": now.Unix(), "jti": randomID()}
}

func randomID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// sign signs claims as a JWS with key under kid.
func sign(t testing.TB, key crypto.Signer, kid string, claims map[string]any) string {
	t.Helper()
	alg := jose.ES384
	if _, ok := key.(*rsa.PrivateKey); ok {
		alg = jose.RS384
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: jose.JSONWebKey{Key: key, KeyID: kid}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	out, err := jwt.Signed(s).Claims(claims).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func form(assertion, scope string) url.Values {
	return url.Values{"grant_type": {"client_credentials"}, "client_assertion_type": {auth.AssertionTypeJWTBearer},
		"client_assertion": {assertion}, "scope": {scope}}
}

// wantRefused fails unless the request is refused with code and no token.
func wantRefused(t *testing.T, tok auth.Token, err error, code string) {
	t.Helper()
	var oe *auth.OAuthError
	if !errors.As(err, &oe) || oe.Code != code {
		t.Fatalf("error %v, want OAuth %s", err, code)
	}
	if tok.AccessToken != "" {
		t.Fatal("a refused request got a token")
	}
	if want := map[string]int{"invalid_client": 401}[code]; want != 0 && oe.Status != want {
		t.Fatalf("status %d, want %d", oe.Status, want)
	}
}

func TestTokenAndPrincipal(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, deployment)
	ec, rs := ecKey(t), rsaKey(t)
	e.register(t, store.Client{ID: "ehr-a", Name: "A", Kind: "partner", Scopes: []string{"system/*.rs", "kap/episodes.write"},
		Orgs: []string{"org-1"}, Rate: 7}, map[string]crypto.Signer{"ec": ec, "rsa": rs})

	for kid, key := range map[string]crypto.Signer{"ec": ec, "rsa": rs} {
		tok, err := e.issuer.Token(ctx, form(sign(t, key, kid, e.claims("ehr-a")),
			"system/Observation.read system/Patient.cruds kap/episodes.write launch"))
		if err != nil {
			t.Fatalf("%s: token: %v", kid, err)
		}
		if tok.TokenType != "bearer" || tok.ExpiresIn != 300 || tok.Scope != "system/Observation.read system/Patient.rs" {
			t.Fatalf("%s: token response %+v", kid, tok)
		}
		p, err := e.verifier.Principal(ctx, tok.AccessToken)
		if err != nil {
			t.Fatalf("%s: principal: %v", kid, err)
		}
		if p.ClientID != "ehr-a" || p.Kind != auth.KindPartner || p.Rate != 7 || p.Access.All ||
			len(p.Access.Orgs) != 1 || p.Access.Orgs[0] != "org-1" ||
			!p.Can("Observation", auth.Search) || p.Can("Patient", auth.Update) || p.HasScope("kap/episodes.write") {
			t.Fatalf("%s: principal %+v", kid, p)
		}
	}
}

// TestAttackBattery refuses every forged, replayed or out-of-bounds
// request, and issues no token for any of them.
func TestAttackBattery(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, deployment)
	key := ecKey(t)
	e.register(t, store.Client{ID: "ehr-a", Name: "A", Kind: "partner", Scopes: []string{"system/Observation.rs"}}, map[string]crypto.Signer{"k1": key})
	e.register(t, store.Client{ID: "ehr-two", Name: "Two", Kind: "partner", Scopes: []string{"system/*.rs"}}, nil)
	// ehr-two registers two keys under one kid.
	twoKeys, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{
		{Key: key.Public(), KeyID: "dup"}, {Key: ecKey(t).Public(), KeyID: "dup"}}})
	if err := e.st.SetClientKeys(ctx, "ehr-two", twoKeys, ""); err != nil {
		t.Fatal(err)
	}
	e.register(t, store.Client{ID: "ehr-off", Name: "Off", Kind: "partner", Scopes: []string{"system/*.rs"}}, map[string]crypto.Signer{"k1": key})
	if err := e.st.SetClientDisabled(ctx, "ehr-off", true); err != nil {
		t.Fatal(err)
	}
	const scope = "system/Observation.rs"
	with := func(id string, change func(map[string]any)) map[string]any {
		c := e.claims(id)
		change(c)
		return c
	}
	refuse := func(name, assertion, scope, code string) {
		t.Run(name, func(t *testing.T) {
			tok, err := e.issuer.Token(ctx, form(assertion, scope))
			wantRefused(t, tok, err, code)
		})
	}

	refuse("AlgNone", unsigned(t, map[string]any{"alg": "none", "kid": "k1"}, e.claims("ehr-a"), nil), scope, "invalid_client")
	pubDER, _ := x509.MarshalPKIXPublicKey(key.Public())
	refuse("HS256WithPublicKey", unsigned(t, map[string]any{"alg": "HS256", "kid": "k1"}, e.claims("ehr-a"), pubDER), scope, "invalid_client")
	refuse("Expired", sign(t, key, "k1", with("ehr-a", func(c map[string]any) { c["exp"] = time.Now().Add(-time.Second).Unix() })), scope, "invalid_client")
	refuse("Exp301sAhead", sign(t, key, "k1", with("ehr-a", func(c map[string]any) { c["exp"] = time.Now().Add(301 * time.Second).Unix() })), scope, "invalid_client")
	refuse("WrongAud", sign(t, key, "k1", with("ehr-a", func(c map[string]any) { c["aud"] = "https://other.test/auth/token" })), scope, "invalid_client")
	refuse("IssNotSub", sign(t, key, "k1", with("ehr-a", func(c map[string]any) { c["sub"] = "ehr-b" })), scope, "invalid_client")
	refuse("NoJTI", sign(t, key, "k1", with("ehr-a", func(c map[string]any) { delete(c, "jti") })), scope, "invalid_client")
	refuse("UnknownKid", sign(t, key, "k9", e.claims("ehr-a")), scope, "invalid_client")
	refuse("WrongKey", sign(t, ecKey(t), "k1", e.claims("ehr-a")), scope, "invalid_client")
	refuse("KidMatchesTwoKeys", sign(t, key, "dup", e.claims("ehr-two")), scope, "invalid_client")
	refuse("ScopeNotAllowed", sign(t, key, "k1", e.claims("ehr-a")), "system/Patient.rs kap/episodes.write", "invalid_scope")
	refuse("DisabledPartner", sign(t, key, "k1", e.claims("ehr-off")), scope, "invalid_client")
	refuse("UnknownClient", sign(t, key, "k1", e.claims("ehr-nobody")), scope, "invalid_client")

	t.Run("ReplayedJTI", func(t *testing.T) {
		a := sign(t, key, "k1", e.claims("ehr-a"))
		if _, err := e.issuer.Token(ctx, form(a, scope)); err != nil {
			t.Fatalf("first use: %v", err)
		}
		tok, err := e.issuer.Token(ctx, form(a, scope))
		wantRefused(t, tok, err, "invalid_client")
	})
	t.Run("WrongGrant", func(t *testing.T) {
		f := form(sign(t, key, "k1", e.claims("ehr-a")), scope)
		f.Set("grant_type", "authorization_code")
		tok, err := e.issuer.Token(ctx, f)
		wantRefused(t, tok, err, "unsupported_grant_type")
	})
	t.Run("TamperedAccessToken", func(t *testing.T) {
		tok, err := e.issuer.Token(ctx, form(sign(t, key, "k1", e.claims("ehr-a")), scope))
		if err != nil {
			t.Fatal(err)
		}
		parts := strings.Split(tok.AccessToken, ".")
		payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
		payload = []byte(strings.Replace(string(payload), "system/Observation.rs", "system/*.cruds", 1))
		forged := parts[0] + "." + base64.RawURLEncoding.EncodeToString(payload) + "." + parts[2]
		if _, err := e.verifier.Principal(ctx, forged); !errors.Is(err, auth.ErrUnauthenticated) {
			t.Fatalf("tampered token: %v", err)
		}
		if _, err := e.verifier.Principal(ctx, tok.AccessToken); err != nil {
			t.Fatalf("genuine token: %v", err)
		}
	})
	t.Run("TokenFromAnotherDeployment", func(t *testing.T) {
		other := newEnv(t, "https://other.test")
		other.register(t, store.Client{ID: "ehr-a", Name: "A", Kind: "partner", Scopes: []string{"system/*.rs"}}, map[string]crypto.Signer{"k1": key})
		tok, err := other.issuer.Token(ctx, form(sign(t, key, "k1", other.claims("ehr-a")), scope))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.verifier.Principal(ctx, tok.AccessToken); !errors.Is(err, auth.ErrUnauthenticated) {
			t.Fatalf("token of another deployment: %v", err)
		}
	})
	t.Run("DisabledAfterIssue", func(t *testing.T) {
		e.register(t, store.Client{ID: "ehr-late", Name: "Late", Kind: "partner", Scopes: []string{"system/*.rs"}}, map[string]crypto.Signer{"k1": key})
		tok, err := e.issuer.Token(ctx, form(sign(t, key, "k1", e.claims("ehr-late")), scope))
		if err != nil {
			t.Fatal(err)
		}
		if err := e.st.SetClientDisabled(ctx, "ehr-late", true); err != nil {
			t.Fatal(err)
		}
		if _, err := e.verifier.Principal(ctx, tok.AccessToken); !errors.Is(err, auth.ErrUnauthenticated) {
			t.Fatalf("token of a disabled client: %v", err)
		}
	})
}

// unsigned builds a compact JWS with any header; with hmacKey it is signed
// HS256 with that key, else its signature is empty.
func unsigned(t testing.TB, header, claims map[string]any, hmacKey []byte) string {
	t.Helper()
	h, _ := json.Marshal(header)
	c, _ := json.Marshal(claims)
	enc := base64.RawURLEncoding
	input := enc.EncodeToString(h) + "." + enc.EncodeToString(c)
	if hmacKey == nil {
		return input + "."
	}
	m := hmac.New(sha256.New, hmacKey)
	m.Write([]byte(input))
	return input + "." + enc.EncodeToString(m.Sum(nil))
}

func TestAuthenticateNeedsBearer(t *testing.T) {
	t.Parallel()
	e := newEnv(t, deployment)
	for _, h := range []string{"", "Basic abc", "Bearer ", "Bearer not.a.jwt"} {
		r, _ := http.NewRequest(http.MethodGet, "/", nil)
		r.Header.Set("Authorization", h)
		if _, err := e.verifier.Authenticate(r); !errors.Is(err, auth.ErrUnauthenticated) {
			t.Fatalf("Authorization %q: %v", h, err)
		}
	}
}
