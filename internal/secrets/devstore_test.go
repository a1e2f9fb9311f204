package secrets

import (
	"context"
	"crypto/ecdsa"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestDevStoreFileIs0600AndStableAcrossRestarts(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "data")
	ref := Ref{Scheme: SchemeVault, Mount: "kv", Path: "kapgw/webhooks/clinic", Field: "hmac"}

	d1, err := OpenDevStore(ctx, testLogger(t), dir, "kapgw-token")
	if err != nil {
		t.Fatalf("OpenDevStore: %v", err)
	}
	info, err := os.Stat(d1.Path())
	if err != nil {
		t.Fatalf("stat store: %v", err)
	}
	if info.Mode().Perm() != 0o600 {
		t.Fatalf("store mode = %v, want 0600", info.Mode().Perm())
	}
	v1, err := d1.Secret(ctx, ref)
	if err != nil || len(v1) < 40 {
		t.Fatalf("Secret: len %d, %v; want a generated 256-bit value", len(v1), err)
	}
	s1, err := d1.Signer("kapgw-token")
	if err != nil {
		t.Fatalf("Signer: %v", err)
	}

	d2, err := OpenDevStore(ctx, testLogger(t), dir, "kapgw-token")
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	if v2, err := d2.Secret(ctx, ref); err != nil || v2 != v1 {
		t.Fatalf("secret changed across restart (err %v)", err)
	}
	s2, err := d2.Signer("kapgw-token")
	if err != nil {
		t.Fatalf("Signer after reopen: %v", err)
	}
	p1, _ := s1.PublicKey(ctx)
	p2, _ := s2.PublicKey(ctx)
	if !p1.(*ecdsa.PublicKey).Equal(p2) || s1.KeyID() != s2.KeyID() {
		t.Fatal("signing key changed across restart")
	}
	signAndVerify(t, s2)
}

func TestDevStoreRefusesFileOpenToOthers(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, DevStoreFile), []byte(`{}`), 0o600); err != nil {
		t.Fatalf("write: %v", err)
	}
	if err := os.Chmod(filepath.Join(dir, DevStoreFile), 0o644); err != nil {
		t.Fatalf("chmod: %v", err)
	}
	if _, err := OpenDevStore(context.Background(), testLogger(t), dir); err == nil {
		t.Fatal("OpenDevStore accepted a world-readable store")
	}
}

func TestDevStorePutAndUnknownSigner(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	d, err := OpenDevStore(ctx, testLogger(t), dir)
	if err != nil {
		t.Fatalf("OpenDevStore: %v", err)
	}
	ref := Ref{Scheme: SchemeLocal, Mount: "kv", Path: "kapgw/partners/sandbox", Field: "client_secret"}
	if err := d.Put(ref, "sandbox-value"); err != nil {
		t.Fatalf("Put: %v", err)
	}
	d2, err := OpenDevStore(ctx, testLogger(t), dir)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	if v, err := d2.Secret(ctx, ref); err != nil || v != "sandbox-value" {
		t.Fatalf("Secret after Put and reopen: %v", err)
	}
	if _, err := d2.Signer("kapgw-rx"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Signer(unknown) = %v, want ErrNotFound", err)
	}
}
