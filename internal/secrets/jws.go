package secrets

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha512"
	"errors"
	"fmt"
	"math/big"
)

// es384Size is the length of one ES384 signature half (R or S).
const es384Size = 48

// Verify checks a JWS signature made by a Signer over data with the public
// key and JWS algorithm it reports. Token verification uses it, and tests
// use it to prove Vault's signatures are valid JWS signatures.
func Verify(alg string, pub crypto.PublicKey, data, sig []byte) error {
	digest := sha512.Sum384(data)
	switch alg {
	case AlgES384:
		k, ok := pub.(*ecdsa.PublicKey)
		if !ok || k.Curve != elliptic.P384() {
			return errors.New("verify ES384: key is not a P-384 ECDSA key")
		}
		if len(sig) != 2*es384Size {
			return fmt.Errorf("verify ES384: signature is %d bytes, want %d", len(sig), 2*es384Size)
		}
		r := new(big.Int).SetBytes(sig[:es384Size])
		s := new(big.Int).SetBytes(sig[es384Size:])
		if !ecdsa.Verify(k, digest[:], r, s) {
			return errors.New("verify ES384: invalid signature")
		}
		return nil
	case AlgRS384:
		k, ok := pub.(*rsa.PublicKey)
		if !ok {
			return errors.New("verify RS384: key is not an RSA key")
		}
		if err := rsa.VerifyPKCS1v15(k, crypto.SHA384, digest[:], sig); err != nil {
			return fmt.Errorf("verify RS384: %w", err)
		}
		return nil
	default:
		return fmt.Errorf("verify: unsupported algorithm %q", alg)
	}
}
