package secrets

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

func TestTransitCipherRoundTrip(t *testing.T) {
	t.Parallel()
	addr, token := testVault(t)
	key := createTransitKey(t, rootClient(t, addr, token), "aes256-gcm96")
	c := NewTransitCipher(connectToken(t, addr, token, 0, 0), "transit", key)
	ctx := context.Background()
	plain := []byte(`{"resourceType":"Patient","name":[{"family":"Canary"}]}`)
	ct, err := c.Encrypt(ctx, plain)
	if err != nil {
		t.Fatalf("Encrypt: %v", err)
	}
	if !strings.HasPrefix(ct, "vault:v1:") || strings.Contains(ct, "Canary") {
		t.Fatalf("ciphertext %q is not a Transit ciphertext", ct)
	}
	got, err := c.Decrypt(ctx, ct)
	if err != nil {
		t.Fatalf("Decrypt: %v", err)
	}
	if !bytes.Equal(got, plain) {
		t.Fatalf("Decrypt = %q, want %q", got, plain)
	}
}

func TestTransitCipherMissingKeyFails(t *testing.T) {
	t.Parallel()
	addr, token := testVault(t)
	c := NewTransitCipher(connectToken(t, addr, token, 0, 0), "transit", "no-such-key-"+strings.ToLower(t.Name()))
	if _, err := c.Decrypt(context.Background(), "vault:v1:AAAA"); err == nil {
		t.Fatal("Decrypt with a missing key succeeded")
	}
}

func TestDevCipherRoundTripAcrossReopen(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	d, err := OpenDevStore(ctx, testLogger(t), dir)
	if err != nil {
		t.Fatalf("OpenDevStore: %v", err)
	}
	c, err := d.Cipher(ctx, ExchangeKey)
	if err != nil {
		t.Fatalf("Cipher: %v", err)
	}
	ct, err := c.Encrypt(ctx, []byte("Canary"))
	if err != nil {
		t.Fatalf("Encrypt: %v", err)
	}
	if !strings.HasPrefix(ct, localPrefix) || strings.Contains(ct, "Canary") {
		t.Fatalf("ciphertext %q", ct)
	}
	d2, err := OpenDevStore(ctx, testLogger(t), dir)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	c2, err := d2.Cipher(ctx, ExchangeKey)
	if err != nil {
		t.Fatalf("Cipher after reopen: %v", err)
	}
	got, err := c2.Decrypt(ctx, ct)
	if err != nil || string(got) != "Canary" {
		t.Fatalf("Decrypt after reopen = %q, %v", got, err)
	}
	if _, err := c2.Decrypt(ctx, ct[:len(ct)-4]+"AAAA"); err == nil {
		t.Fatal("tampered ciphertext decrypted")
	}
}
