package sign_test

import (
	"context"
	"crypto/rand"
	"errors"
	"io"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/kapgw/kapgw/internal/secrets"
	"github.com/kapgw/kapgw/pharmacy/sign"
)

var body = []byte(`<?xml version="1.0" encoding="UTF-8"?>` + "\n<Message>NewRx</Message>\n")

func devSigner(t testing.TB, name string) secrets.Signer {
	t.Helper()
	d, err := secrets.OpenDevStore(context.Background(), slog.New(slog.NewTextHandler(io.Discard, nil)), t.TempDir(), name)
	if err != nil {
		t.Fatal(err)
	}
	s, err := d.Signer(name)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// transitSigner makes a Transit key in the shared test Vault.
func transitSigner(t testing.TB) secrets.Signer {
	t.Helper()
	addr, token := os.Getenv("KAPGW_TEST_VAULT_ADDR"), os.Getenv("KAPGW_TEST_VAULT_TOKEN")
	if addr == "" || token == "" {
		t.Fatal("KAPGW_TEST_VAULT_ADDR and KAPGW_TEST_VAULT_TOKEN must be set; run scripts/test.sh")
	}
	root, err := api.NewClient(&api.Config{Address: addr})
	if err != nil {
		t.Fatal(err)
	}
	root.SetToken(token)
	key := "pharmacy-sign-test-" + strings.ToLower(rand.Text()[:8])
	if _, err := root.Logical().Write("transit/keys/"+key, map[string]any{"type": "ecdsa-p384"}); err != nil {
		t.Fatalf("create transit key: %v", err)
	}
	c, err := secrets.Connect(context.Background(), slog.New(slog.NewTextHandler(io.Discard, nil)),
		secrets.Config{Addr: addr, Auth: secrets.AuthToken, Token: token, RequestTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	s, err := secrets.NewTransitSigner(context.Background(), c, "transit", key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSignVerify(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for name, s := range map[string]secrets.Signer{"dev": devSigner(t, "pharmacy"), "transit": transitSigner(t)} {
		jws, err := sign.Sign(ctx, s, body)
		if err != nil {
			t.Fatalf("%s: Sign: %v", name, err)
		}
		kid, err := sign.Verify(ctx, sign.KeysOf(s), jws, body)
		if err != nil || kid != s.KeyID() {
			t.Errorf("%s: Verify = %q, %v", name, kid, err)
		}
	}
}

// TestEveryByteIsSigned flips each byte of the body in turn.
func TestEveryByteIsSigned(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := devSigner(t, "pharmacy")
	jws, err := sign.Sign(ctx, s, body)
	if err != nil {
		t.Fatal(err)
	}
	for i := range body {
		changed := append([]byte(nil), body...)
		changed[i] ^= 0x01
		if _, err := sign.Verify(ctx, sign.KeysOf(s), jws, changed); !errors.Is(err, sign.ErrInvalid) {
			t.Fatalf("byte %d changed: Verify = %v, want ErrInvalid", i, err)
		}
	}
	if _, err := sign.Verify(ctx, sign.KeysOf(s), jws, append(body, ' ')); !errors.Is(err, sign.ErrInvalid) {
		t.Errorf("byte appended: Verify = %v", err)
	}
}

func TestVerifyRefuses(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, other := devSigner(t, "pharmacy"), devSigner(t, "pharmacy")
	jws, err := sign.Sign(ctx, s, body)
	if err != nil {
		t.Fatal(err)
	}
	head, sig, _ := strings.Cut(jws, "..")
	for name, bad := range map[string]string{
		"attached payload": head + ".Ym9keQ." + sig,
		"no separator":     head + sig,
		"bad header":       "e30.." + sig,
		"bad encoding":     head + "..***",
		"other signature":  head + ".." + sig[:len(sig)-4] + "AAAA",
	} {
		if _, err := sign.Verify(ctx, sign.KeysOf(s), bad, body); !errors.Is(err, sign.ErrInvalid) {
			t.Errorf("%s: Verify = %v, want ErrInvalid", name, err)
		}
	}
	if _, err := sign.Verify(ctx, sign.KeysOf(other), jws, body); !errors.Is(err, sign.ErrInvalid) {
		t.Errorf("unknown key: Verify = %v, want ErrInvalid", err)
	}
}
