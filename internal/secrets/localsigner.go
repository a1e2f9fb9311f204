package secrets

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"encoding/base64"
	"fmt"
)

// LocalSigner signs ES384 with a development key held in the DevStore file.
// It exists only so `kapgw serve` works without Vault; production signs
// through TransitSigner.
type LocalSigner struct {
	name string
	key  *ecdsa.PrivateKey
}

var _ Signer = (*LocalSigner)(nil)

// Sign returns the raw R||S ES384 signature of data.
func (l *LocalSigner) Sign(_ context.Context, data []byte) ([]byte, error) {
	digest := sha512.Sum384(data)
	r, s, err := ecdsa.Sign(rand.Reader, l.key, digest[:])
	if err != nil {
		return nil, fmt.Errorf("dev sign with %s: %w", l.name, err)
	}
	sig := make([]byte, 2*es384Size)
	r.FillBytes(sig[:es384Size])
	s.FillBytes(sig[es384Size:])
	return sig, nil
}

// PublicKey returns the development key's public half.
func (l *LocalSigner) PublicKey(context.Context) (crypto.PublicKey, error) {
	return &l.key.PublicKey, nil
}

// Algorithm returns ES384.
func (l *LocalSigner) Algorithm() string { return AlgES384 }

// KeyID returns "<name>-dev-<fingerprint>", which changes if the store file
// is recreated with new keys.
func (l *LocalSigner) KeyID() string {
	der, err := x509.MarshalPKIXPublicKey(&l.key.PublicKey)
	if err != nil {
		return l.name + "-dev"
	}
	sum := sha256.Sum256(der)
	return l.name + "-dev-" + base64.RawURLEncoding.EncodeToString(sum[:6])
}
