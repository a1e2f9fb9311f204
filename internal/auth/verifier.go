package auth

import (
	"context"
	"crypto"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/kapgw/kapgw/internal/secrets"
	"github.com/kapgw/kapgw/internal/store"
)

// ErrUnauthenticated marks a request without a valid access token: missing,
// malformed, tampered with, expired, from another deployment, or of a
// client since disabled. The HTTP layer answers 401.
var ErrUnauthenticated = errors.New("unauthenticated")

// Verifier checks the access tokens an Issuer signed and turns them into
// the Principal of a request. It reads the client through a short cache on
// every request, so a disabled client or a narrowed scope list takes effect
// within the cache's lifetime, without waiting for tokens to expire.
type Verifier struct {
	clients *Clients
	signer  secrets.Signer
	url     string
	now     func() time.Time

	mu       sync.Mutex
	pub      crypto.PublicKey
	verified map[[32]byte]accessClaims // by SHA-256 of the token, until it expires
}

// maxVerified bounds the verified-token cache; when full it starts over.
const maxVerified = 10_000

// NewVerifier returns a Verifier of the tokens signer signs for the
// deployment at url (IssuerConfig.URL).
func NewVerifier(clients *Clients, signer secrets.Signer, url string, now func() time.Time) *Verifier {
	return &Verifier{clients: clients, signer: signer, url: url, now: now, verified: map[[32]byte]accessClaims{}}
}

// Authenticate returns the caller of r from its Bearer access token.
func (v *Verifier) Authenticate(r *http.Request) (Principal, error) {
	scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || tok == "" {
		return Principal{}, fmt.Errorf("%w: no bearer token", ErrUnauthenticated)
	}
	return v.Principal(r.Context(), strings.TrimSpace(tok))
}

// Principal verifies an access token and returns its caller.
func (v *Verifier) Principal(ctx context.Context, token string) (Principal, error) {
	claims, err := v.verify(ctx, token)
	if err != nil {
		return Principal{}, err
	}
	c, err := v.clients.Client(ctx, claims.Subject)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return Principal{}, fmt.Errorf("%w: unknown client", ErrUnauthenticated)
	case err != nil:
		return Principal{}, fmt.Errorf("load client: %w", err)
	case c.Disabled:
		return Principal{}, fmt.Errorf("%w: client disabled", ErrUnauthenticated)
	}
	now := v.now()
	kind := Kind(c.Kind)
	return Principal{
		ClientID: c.ID,
		Kind:     kind,
		Scopes:   grantTo(c, strings.Fields(claims.Scope)),
		Access:   store.Access{All: kind == KindClinic || kind == KindAdmin, Orgs: c.Orgs, Now: now},
		Rate:     c.Rate,
	}, nil
}

// verify checks an access token's signature, type and claims. A token
// already verified is only checked for expiry again: an ES384 verification
// costs more than the rest of a read.
func (v *Verifier) verify(ctx context.Context, token string) (accessClaims, error) {
	sum := sha256.Sum256([]byte(token))
	v.mu.Lock()
	claims, ok := v.verified[sum]
	v.mu.Unlock()
	if ok && v.now().Before(claims.Expiry.Time()) {
		return claims, nil
	}
	claims, err := v.verifySignature(ctx, token)
	if err != nil {
		return claims, err
	}
	v.mu.Lock()
	if len(v.verified) >= maxVerified {
		clear(v.verified)
	}
	v.verified[sum] = claims
	v.mu.Unlock()
	return claims, nil
}

func (v *Verifier) verifySignature(ctx context.Context, token string) (accessClaims, error) {
	var claims accessClaims
	alg := jose.SignatureAlgorithm(v.signer.Algorithm())
	tok, err := jwt.ParseSigned(token, []jose.SignatureAlgorithm{alg})
	if err != nil || len(tok.Headers) != 1 {
		return claims, fmt.Errorf("%w: malformed token", ErrUnauthenticated)
	}
	h := tok.Headers[0]
	if h.KeyID != v.signer.KeyID() || h.ExtraHeaders[jose.HeaderType] != tokenType {
		return claims, fmt.Errorf("%w: not an access token of this gateway", ErrUnauthenticated)
	}
	pub, err := v.publicKey(ctx)
	if err != nil {
		return claims, err
	}
	if err := tok.Claims(pub, &claims); err != nil {
		return claims, fmt.Errorf("%w: bad signature", ErrUnauthenticated)
	}
	err = claims.ValidateWithLeeway(jwt.Expected{Issuer: v.url, AnyAudience: jwt.Audience{v.url}, Time: v.now()}, 0)
	if err != nil || claims.Expiry == nil || claims.Subject == "" {
		return claims, fmt.Errorf("%w: token expired or for another deployment", ErrUnauthenticated)
	}
	return claims, nil
}

// publicKey returns the signer's public key, asked for once.
func (v *Verifier) publicKey(ctx context.Context) (crypto.PublicKey, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.pub != nil {
		return v.pub, nil
	}
	pub, err := v.signer.PublicKey(ctx)
	if err != nil {
		return nil, fmt.Errorf("token verification key: %w", err)
	}
	v.pub = pub
	return pub, nil
}
