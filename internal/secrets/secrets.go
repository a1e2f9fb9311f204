// Package secrets resolves the gateway's secrets and signs with keys that
// never leave Vault.
//
// Every secret the gateway uses (the access-token signing key, partner and
// pharmacy credentials, webhook HMAC secrets, the production database
// password) is named in configuration by a Ref and read from Vault's KV
// version 2 engine through KV, which caches values, notices rotations within
// a refresh interval and keeps serving cached values for a bounded time while
// Vault is unreachable or sealed. Signing goes through Transit (TransitSigner)
// and always fails closed: when Vault is down nothing is signed and the caller
// retries later.
//
// With no Vault configured, development runs use DevStore, a 0600 file under
// the data directory that holds generated secrets and signing keys. It must
// never be used by a production profile.
package secrets

import (
	"context"
	"crypto"
	"errors"
)

// ErrUnavailable marks failures caused by Vault being unreachable, sealed or
// overloaded. Work that fails with it is safe to retry later.
var ErrUnavailable = errors.New("vault unavailable")

// ErrNotFound marks a reference whose secret or field does not exist.
var ErrNotFound = errors.New("secret not found")

// Signer signs with a key the gateway never holds in production. Signatures
// are in JWS form (raw R||S for ES384, PKCS #1 v1.5 for RS384), ready to be
// base64url-encoded into a compact JWS.
type Signer interface {
	// Sign signs data (the JWS signing input); it never falls back to an
	// unsigned or locally signed result when the key store is down.
	Sign(ctx context.Context, data []byte) ([]byte, error)
	// PublicKey returns the public half of the key Sign uses, for JWKS and
	// for verification.
	PublicKey(ctx context.Context) (crypto.PublicKey, error)
	// Algorithm returns the JWS alg, ES384 or RS384.
	Algorithm() string
	// KeyID returns the JWS kid of the key Sign uses.
	KeyID() string
}

// JWS algorithms the signers produce.
const (
	AlgES384 = "ES384"
	AlgRS384 = "RS384"
)
