package secrets

import (
	"context"
	"crypto"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"strconv"
	"strings"
)

// TransitSigner signs with a Vault Transit key; the private key never leaves
// Vault. It pins the key version it saw at construction so KeyID always
// matches the key that made the signature.
type TransitSigner struct {
	client  *Client
	mount   string
	key     string
	alg     string
	version int
	pub     crypto.PublicKey
}

var _ Signer = (*TransitSigner)(nil)

// NewTransitSigner reads the Transit key's type, latest version and public
// key. ecdsa-p384 keys sign ES384; rsa-2048, rsa-3072 and rsa-4096 keys sign
// RS384.
func NewTransitSigner(ctx context.Context, client *Client, mount, key string) (*TransitSigner, error) {
	s, err := client.api.Logical().ReadWithContext(ctx, mount+"/keys/"+key)
	if err != nil {
		return nil, fmt.Errorf("read transit key %s/%s: %w", mount, key, classify(err))
	}
	if s == nil {
		return nil, fmt.Errorf("read transit key %s/%s: %w", mount, key, ErrNotFound)
	}
	info, err := parseTransitKey(s.Data)
	if err != nil {
		return nil, fmt.Errorf("read transit key %s/%s: %w", mount, key, err)
	}
	return &TransitSigner{client: client, mount: mount, key: key, alg: info.alg, version: info.version, pub: info.pub}, nil
}

// transitKey is what a signer needs from a Transit key description.
type transitKey struct {
	alg     string
	version int
	pub     crypto.PublicKey
}

func parseTransitKey(data map[string]any) (transitKey, error) {
	var k transitKey
	typ, _ := data["type"].(string)
	switch {
	case typ == "ecdsa-p384":
		k.alg = AlgES384
	case strings.HasPrefix(typ, "rsa-"):
		k.alg = AlgRS384
	default:
		return k, fmt.Errorf("key type %q cannot sign ES384 or RS384", typ)
	}
	n, ok := data["latest_version"].(json.Number)
	if !ok {
		return k, fmt.Errorf("no latest_version")
	}
	v, err := n.Int64()
	if err != nil {
		return k, fmt.Errorf("latest_version: %w", err)
	}
	k.version = int(v)
	keys, _ := data["keys"].(map[string]any)
	entry, _ := keys[strconv.Itoa(k.version)].(map[string]any)
	pemText, _ := entry["public_key"].(string)
	k.pub, err = parsePublicKeyPEM(pemText)
	if err != nil {
		return k, fmt.Errorf("public key of version %d: %w", k.version, err)
	}
	return k, nil
}

func parsePublicKeyPEM(s string) (crypto.PublicKey, error) {
	b, _ := pem.Decode([]byte(s))
	if b == nil {
		return nil, fmt.Errorf("no PEM block")
	}
	if pub, err := x509.ParsePKIXPublicKey(b.Bytes); err == nil {
		return pub, nil
	}
	pub, err := x509.ParsePKCS1PublicKey(b.Bytes)
	if err != nil {
		return nil, fmt.Errorf("parse public key: %w", err)
	}
	return pub, nil
}

// Sign asks Transit to sign data with SHA-384. It fails (ErrUnavailable when
// Vault is down or sealed) rather than ever returning an unsigned result.
func (t *TransitSigner) Sign(ctx context.Context, data []byte) ([]byte, error) {
	req := map[string]any{
		"input":       base64.StdEncoding.EncodeToString(data),
		"key_version": t.version,
	}
	enc := base64.StdEncoding
	if t.alg == AlgES384 {
		req["marshaling_algorithm"] = "jws" // raw R||S, base64url
		enc = base64.RawURLEncoding
	} else {
		req["signature_algorithm"] = "pkcs1v15"
	}
	path := t.mount + "/sign/" + t.key + "/sha2-384"
	s, err := t.client.api.Logical().WriteWithContext(ctx, path, req)
	if err != nil {
		return nil, fmt.Errorf("transit sign with %s: %w", t.KeyID(), classify(err))
	}
	if s == nil {
		return nil, fmt.Errorf("transit sign with %s: empty response", t.KeyID())
	}
	sig, err := decodeTransitSignature(s.Data, t.version, enc)
	if err != nil {
		return nil, fmt.Errorf("transit sign with %s: %w", t.KeyID(), err)
	}
	return sig, nil
}

// decodeTransitSignature strips the "vault:vN:" prefix and checks that the
// pinned version signed.
func decodeTransitSignature(data map[string]any, version int, enc *base64.Encoding) ([]byte, error) {
	raw, _ := data["signature"].(string)
	prefix := "vault:v" + strconv.Itoa(version) + ":"
	if !strings.HasPrefix(raw, prefix) {
		return nil, fmt.Errorf("signature is not from key version %d", version)
	}
	sig, err := enc.DecodeString(raw[len(prefix):])
	if err != nil {
		return nil, fmt.Errorf("decode signature: %w", err)
	}
	return sig, nil
}

// PublicKey returns the public key of the pinned Transit key version.
func (t *TransitSigner) PublicKey(context.Context) (crypto.PublicKey, error) {
	return t.pub, nil
}

// Algorithm returns ES384 or RS384.
func (t *TransitSigner) Algorithm() string { return t.alg }

// KeyID returns "<key>-v<version>", unique per Transit key version.
func (t *TransitSigner) KeyID() string { return t.key + "-v" + strconv.Itoa(t.version) }
