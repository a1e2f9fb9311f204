package secrets

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
)

// ExchangeKey is the Transit key that encrypts exchange-log payloads;
// deploy/vault/bootstrap.sh creates it (type aes256-gcm96).
const ExchangeKey = "kapgw-exchange"

// Cipher encrypts data at rest with a key the gateway never holds in
// production. Ciphertexts are self-describing strings (Vault's
// "vault:v1:..." form, or "local:v1:..." from the development store), so a
// stored value says which key version decrypts it.
type Cipher interface {
	Encrypt(ctx context.Context, plaintext []byte) (string, error)
	Decrypt(ctx context.Context, ciphertext string) ([]byte, error)
}

// TransitCipher encrypts and decrypts through a Vault Transit key.
type TransitCipher struct {
	client *Client
	mount  string
	key    string
}

var _ Cipher = (*TransitCipher)(nil)

// NewTransitCipher returns a cipher using the Transit key mount/key. It does
// not contact Vault: a missing key shows on the first Encrypt.
func NewTransitCipher(client *Client, mount, key string) *TransitCipher {
	return &TransitCipher{client: client, mount: mount, key: key}
}

// Encrypt sends plaintext to Transit and returns its ciphertext.
func (t *TransitCipher) Encrypt(ctx context.Context, plaintext []byte) (string, error) {
	s, err := t.client.api.Logical().WriteWithContext(ctx, t.mount+"/encrypt/"+t.key,
		map[string]any{"plaintext": base64.StdEncoding.EncodeToString(plaintext)})
	if err != nil {
		return "", fmt.Errorf("transit encrypt with %s: %w", t.key, classify(err))
	}
	ct, _ := dataString(s.Data, "ciphertext")
	if ct == "" {
		return "", fmt.Errorf("transit encrypt with %s: no ciphertext", t.key)
	}
	return ct, nil
}

// Decrypt asks Transit to decrypt ciphertext.
func (t *TransitCipher) Decrypt(ctx context.Context, ciphertext string) ([]byte, error) {
	s, err := t.client.api.Logical().WriteWithContext(ctx, t.mount+"/decrypt/"+t.key,
		map[string]any{"ciphertext": ciphertext})
	if err != nil {
		return nil, fmt.Errorf("transit decrypt with %s: %w", t.key, classify(err))
	}
	pt, ok := dataString(s.Data, "plaintext")
	if !ok {
		return nil, fmt.Errorf("transit decrypt with %s: no plaintext", t.key)
	}
	b, err := base64.StdEncoding.DecodeString(pt)
	if err != nil {
		return nil, fmt.Errorf("transit decrypt with %s: %w", t.key, err)
	}
	return b, nil
}

func dataString(data map[string]any, key string) (string, bool) {
	if data == nil {
		return "", false
	}
	v, ok := data[key].(string)
	return v, ok
}

// localPrefix marks ciphertexts of LocalCipher.
const localPrefix = "local:v1:"

// LocalCipher is the development store's stand-in for Transit: AES-256-GCM
// with a key kept in the store file. It must never be used in production.
type LocalCipher struct{ aead cipher.AEAD }

var _ Cipher = (*LocalCipher)(nil)

// Cipher returns an AES-256-GCM cipher whose key is the development secret
// local:transit/<name>#aes256, generated on first use.
func (d *DevStore) Cipher(ctx context.Context, name string) (*LocalCipher, error) {
	v, err := d.Secret(ctx, Ref{Scheme: SchemeLocal, Mount: TransitMount, Path: name, Field: "aes256"})
	if err != nil {
		return nil, err
	}
	key, err := base64.RawURLEncoding.DecodeString(v)
	if err != nil || len(key) != 32 {
		return nil, fmt.Errorf("dev cipher key %s: not a base64url 256-bit key", name)
	}
	return newLocalCipher(key)
}

func newLocalCipher(key []byte) (*LocalCipher, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("dev cipher: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("dev cipher: %w", err)
	}
	return &LocalCipher{aead: aead}, nil
}

// Encrypt seals plaintext under a random nonce.
func (l *LocalCipher) Encrypt(_ context.Context, plaintext []byte) (string, error) {
	nonce := make([]byte, l.aead.NonceSize(), l.aead.NonceSize()+len(plaintext)+l.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return "", fmt.Errorf("dev encrypt: %w", err)
	}
	return localPrefix + base64.StdEncoding.EncodeToString(l.aead.Seal(nonce, nonce, plaintext, nil)), nil
}

// Decrypt opens a ciphertext of Encrypt.
func (l *LocalCipher) Decrypt(_ context.Context, ciphertext string) ([]byte, error) {
	enc, ok := strings.CutPrefix(ciphertext, localPrefix)
	if !ok {
		return nil, errors.New("dev decrypt: not a local:v1 ciphertext")
	}
	b, err := base64.StdEncoding.DecodeString(enc)
	if err != nil || len(b) < l.aead.NonceSize() {
		return nil, errors.New("dev decrypt: malformed ciphertext")
	}
	n := l.aead.NonceSize()
	pt, err := l.aead.Open(nil, b[:n], b[n:], nil)
	if err != nil {
		return nil, fmt.Errorf("dev decrypt: %w", err)
	}
	return pt, nil
}

// ExchangeCipher returns the cipher for exchange-log payloads: the Transit
// key ExchangeKey with Vault, a local AES-GCM key with the development
// store.
func (b *Backend) ExchangeCipher(ctx context.Context) (Cipher, error) {
	if b.Vault != nil {
		return NewTransitCipher(b.Vault, TransitMount, ExchangeKey), nil
	}
	if b.Dev == nil {
		return nil, errors.New("exchange cipher: no secret backend")
	}
	return b.Dev.Cipher(ctx, ExchangeKey)
}
