// Package sign signs the exact bytes of a SCRIPT message before it leaves
// the gateway, and verifies such signatures (for the pharmacy simulator and
// for tests).
//
// The signature is a detached compact JWS (RFC 7515 appendix F): the
// protected header and the signature travel in the HTTP header named
// Header, the payload (the SCRIPT XML) is the request body itself, so the
// body on the wire is byte for byte what was signed. Changing one byte of
// the body after signing breaks verification: a changed prescription must
// be cancelled and re-issued, never re-signed.
//
// The key is behind secrets.Signer: Vault Transit in production, the
// development store's LocalSigner otherwise. DEA rules (21 CFR 1311) require
// a FIPS 140-2 validated module; swapping one in means another Signer.
package sign

import (
	"context"
	"crypto"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/kapgw/kapgw/internal/secrets"
)

// Header is the HTTP header that carries the detached JWS.
const Header = "X-JWS-Signature"

// Type is the JWS typ of a signed SCRIPT message.
const Type = "ncpdp-script+xml"

var b64 = base64.RawURLEncoding

// protected is the JWS protected header.
type protected struct {
	Alg string `json:"alg"`
	Kid string `json:"kid"`
	Typ string `json:"typ"`
}

// Sign returns the detached JWS of body made with s, in the form
// "<protected>..<signature>".
func Sign(ctx context.Context, s secrets.Signer, body []byte) (string, error) {
	h, err := json.Marshal(protected{Alg: s.Algorithm(), Kid: s.KeyID(), Typ: Type})
	if err != nil {
		return "", fmt.Errorf("sign: encode header: %w", err)
	}
	head := b64.EncodeToString(h)
	sig, err := s.Sign(ctx, input(head, body))
	if err != nil {
		return "", fmt.Errorf("sign: %w", err)
	}
	return head + ".." + b64.EncodeToString(sig), nil
}

func input(head string, body []byte) []byte {
	out := make([]byte, 0, len(head)+1+b64.EncodedLen(len(body)))
	out = append(out, head...)
	out = append(out, '.')
	return b64.AppendEncode(out, body)
}

// Keys finds the public key and algorithm of a key id; a verifier trusts
// only the keys it returns.
type Keys func(ctx context.Context, kid string) (alg string, pub crypto.PublicKey, err error)

// ErrInvalid marks a signature that is malformed, made with an unknown key
// or not valid for the body.
var ErrInvalid = errors.New("invalid signature")

// Verify checks the detached JWS jws over body and returns the key id that
// signed it.
func Verify(ctx context.Context, keys Keys, jws string, body []byte) (string, error) {
	head, sigText, ok := strings.Cut(jws, "..")
	if !ok || strings.Contains(sigText, ".") {
		return "", fmt.Errorf("%w: not a detached compact JWS", ErrInvalid)
	}
	hb, err := b64.DecodeString(head)
	if err != nil {
		return "", fmt.Errorf("%w: header encoding", ErrInvalid)
	}
	var p protected
	if err := json.Unmarshal(hb, &p); err != nil || p.Typ != Type {
		return "", fmt.Errorf("%w: header", ErrInvalid)
	}
	sig, err := b64.DecodeString(sigText)
	if err != nil {
		return "", fmt.Errorf("%w: signature encoding", ErrInvalid)
	}
	alg, pub, err := keys(ctx, p.Kid)
	if err != nil {
		return "", fmt.Errorf("%w: key %s: %w", ErrInvalid, p.Kid, err)
	}
	if alg != p.Alg {
		return "", fmt.Errorf("%w: key %s is %s, header says %s", ErrInvalid, p.Kid, alg, p.Alg)
	}
	if err := secrets.Verify(alg, pub, input(head, body), sig); err != nil {
		return "", fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return p.Kid, nil
}

// KeysOf trusts exactly the current keys of the given signers.
func KeysOf(signers ...secrets.Signer) Keys {
	return func(ctx context.Context, kid string) (string, crypto.PublicKey, error) {
		for _, s := range signers {
			if s.KeyID() == kid {
				pub, err := s.PublicKey(ctx)
				return s.Algorithm(), pub, err
			}
		}
		return "", nil, errors.New("unknown key id")
	}
}
