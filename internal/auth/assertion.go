package auth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// SignAssertion makes the client assertion a registered client sends to the
// token endpoint: iss = sub = clientID, aud = tokenURL, a fresh jti, exp
// lifetime after now. key is the client's private key (an RSA key signs
// RS384, a P-384 key ES384). `kapgw partners assertion` and the tests use
// it; partners use their own JOSE library.
func SignAssertion(key crypto.Signer, kid, clientID, tokenURL string, now time.Time, lifetime time.Duration) (string, error) {
	var alg jose.SignatureAlgorithm
	switch key.(type) {
	case *rsa.PrivateKey:
		alg = jose.RS384
	case *ecdsa.PrivateKey:
		alg = jose.ES384
	default:
		return "", errors.New("sign assertion: key must be RSA or ECDSA P-384")
	}
	sig, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: jose.JSONWebKey{Key: key, KeyID: kid}},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return "", fmt.Errorf("sign assertion: %w", err)
	}
	var jti [16]byte
	_, _ = rand.Read(jti[:])
	claims := jwt.Claims{Issuer: clientID, Subject: clientID, Audience: jwt.Audience{tokenURL},
		Expiry: jwt.NewNumericDate(now.Add(lifetime)), IssuedAt: jwt.NewNumericDate(now), ID: hex.EncodeToString(jti[:])}
	out, err := jwt.Signed(sig).Claims(claims).Serialize()
	if err != nil {
		return "", fmt.Errorf("sign assertion: %w", err)
	}
	return out, nil
}

// PublicJWKS returns the JWK Set of the public halves of keys, each with
// its kid and alg, ready for `kapgw partners add --jwks`.
func PublicJWKS(kid string, key crypto.Signer) ([]byte, error) {
	alg := string(jose.ES384)
	if _, ok := key.(*rsa.PrivateKey); ok {
		alg = string(jose.RS384)
	}
	set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: key.Public(), KeyID: kid, Algorithm: alg, Use: "sig"}}}
	b, err := json.MarshalIndent(set, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode jwks: %w", err)
	}
	return b, nil
}
