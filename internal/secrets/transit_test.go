package secrets

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"github.com/hashicorp/vault/api"
)

// createTransitKey creates a Transit key named after the test.
func createTransitKey(tb testing.TB, c *api.Client, keyType string) string {
	tb.Helper()
	name := strings.NewReplacer("/", "-", "_", "-").Replace(strings.ToLower(tb.Name())) + "-" + strings.ToLower(rand.Text()[:8])
	if _, err := c.Logical().Write("transit/keys/"+name, map[string]any{"type": keyType}); err != nil {
		tb.Fatalf("create transit key %s: %v", name, err)
	}
	return name
}

func TestTransitES384SignsVerifiableJWS(t *testing.T) {
	t.Parallel()
	addr, token := testVault(t)
	key := createTransitKey(t, rootClient(t, addr, token), "ecdsa-p384")
	s, err := NewTransitSigner(context.Background(), connectToken(t, addr, token, 0, 0), "transit", key)
	if err != nil {
		t.Fatalf("NewTransitSigner: %v", err)
	}
	if s.Algorithm() != AlgES384 || s.KeyID() != key+"-v1" {
		t.Fatalf("alg, kid = %s, %s", s.Algorithm(), s.KeyID())
	}
	pub := signAndVerify(t, s)
	if k, ok := pub.(*ecdsa.PublicKey); !ok || k.Curve != elliptic.P384() {
		t.Fatalf("public key is %T, want P-384 ECDSA", pub)
	}
}

func TestTransitRS384SignsVerifiableJWS(t *testing.T) {
	t.Parallel()
	addr, token := testVault(t)
	key := createTransitKey(t, rootClient(t, addr, token), "rsa-3072")
	s, err := NewTransitSigner(context.Background(), connectToken(t, addr, token, 0, 0), "transit", key)
	if err != nil {
		t.Fatalf("NewTransitSigner: %v", err)
	}
	if s.Algorithm() != AlgRS384 {
		t.Fatalf("alg = %s, want RS384", s.Algorithm())
	}
	if _, ok := signAndVerify(t, s).(*rsa.PublicKey); !ok {
		t.Fatal("public key is not RSA")
	}
}

func TestTransitRejectsKeysThatCannotSignJWS(t *testing.T) {
	t.Parallel()
	addr, token := testVault(t)
	key := createTransitKey(t, rootClient(t, addr, token), "ecdsa-p256")
	if _, err := NewTransitSigner(context.Background(), connectToken(t, addr, token, 0, 0), "transit", key); err == nil {
		t.Fatal("NewTransitSigner accepted an ecdsa-p256 key for ES384/RS384")
	}
}

// signAndVerify signs a compact JWS signing input and verifies it with Go's
// crypto against the key Transit exports.
func signAndVerify(tb testing.TB, s Signer) any {
	tb.Helper()
	ctx := context.Background()
	header := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"` + s.Algorithm() + `","kid":"` + s.KeyID() + `"}`))
	input := []byte(header + "." + base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"client-1"}`)))
	sig, err := s.Sign(ctx, input)
	if err != nil {
		tb.Fatalf("Sign: %v", err)
	}
	pub, err := s.PublicKey(ctx)
	if err != nil {
		tb.Fatalf("PublicKey: %v", err)
	}
	if err := Verify(s.Algorithm(), pub, input, sig); err != nil {
		tb.Fatalf("Verify: %v", err)
	}
	tampered := append([]byte{}, input...)
	tampered[len(tampered)-1] ^= 1
	if err := Verify(s.Algorithm(), pub, tampered, sig); err == nil {
		tb.Fatal("Verify accepted a signature over other data")
	}
	return pub
}

func TestTransitSigningFailsClosedWhenSealedOrStopped(t *testing.T) {
	t.Parallel()
	v := startVault(t)
	key := createTransitKey(t, rootClient(t, v.Addr, v.Token), "ecdsa-p384")
	s, err := NewTransitSigner(context.Background(), connectToken(t, v.Addr, v.Token, 0, 0), "transit", key)
	if err != nil {
		t.Fatalf("NewTransitSigner: %v", err)
	}
	signAndVerify(t, s)

	v.seal(t)
	assertSignUnavailable(t, s)
	v.unseal(t)
	signAndVerify(t, s)
	v.stop(t)
	assertSignUnavailable(t, s)
}

func assertSignUnavailable(tb testing.TB, s Signer) {
	tb.Helper()
	sig, err := s.Sign(context.Background(), []byte("a.b"))
	if !errors.Is(err, ErrUnavailable) || sig != nil {
		tb.Fatalf("Sign = %d bytes, %v; want no signature and ErrUnavailable", len(sig), err)
	}
}
