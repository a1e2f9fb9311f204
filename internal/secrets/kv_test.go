package secrets

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestKVReadPicksUpRotationAfterRefresh(t *testing.T) {
	t.Parallel()
	addr, token := testVault(t)
	root := rootClient(t, addr, token)
	path := testPath(t)
	putKV(t, root, path, map[string]any{"hmac": "first"})
	clk := newClock()
	kv := NewKV(connectToken(t, addr, token, time.Minute, time.Hour), testLogger(t), clk.Now)
	ref := Ref{Scheme: SchemeVault, Mount: "kv", Path: path, Field: "hmac"}
	ctx := context.Background()

	assertSecret(t, kv, ref, "first", 1)
	putKV(t, root, path, map[string]any{"hmac": "second"})
	clk.advance(59 * time.Second)
	assertSecret(t, kv, ref, "first", 1) // Still within the refresh interval.
	clk.advance(time.Second)
	assertSecret(t, kv, ref, "second", 2)

	if _, err := kv.Secret(ctx, Ref{Scheme: SchemeVault, Mount: "kv", Path: path, Field: "missing"}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing field: err = %v, want ErrNotFound", err)
	}
	if _, err := kv.Secret(ctx, Ref{Scheme: SchemeVault, Mount: "kv", Path: path + "-absent", Field: "x"}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing secret: err = %v, want ErrNotFound", err)
	}
	if _, err := kv.Secret(ctx, Ref{Scheme: SchemeLocal, Mount: "kv", Path: path, Field: "hmac"}); err == nil {
		t.Fatal("local: ref resolved through Vault, want error")
	}
}

func TestKVServesCachedWhileVaultStoppedUpToMaxAge(t *testing.T) {
	t.Parallel()
	v := startVault(t)
	putKV(t, rootClient(t, v.Addr, v.Token), "kapgw/partners/ehr-1", map[string]any{"client_secret": "cached"})
	clk := newClock()
	kv := NewKV(connectToken(t, v.Addr, v.Token, time.Minute, 10*time.Minute), testLogger(t), clk.Now)
	ref := Ref{Scheme: SchemeVault, Mount: "kv", Path: "kapgw/partners/ehr-1", Field: "client_secret"}
	assertSecret(t, kv, ref, "cached", 1)

	v.stop(t)
	clk.advance(9*time.Minute + 59*time.Second)
	assertSecret(t, kv, ref, "cached", 1)
	clk.advance(time.Second)
	if _, err := kv.Secret(context.Background(), ref); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("after max age: err = %v, want ErrUnavailable", err)
	}
}

func TestKVServesCachedWhileVaultSealedUpToMaxAge(t *testing.T) {
	t.Parallel()
	v := startVault(t)
	root := rootClient(t, v.Addr, v.Token)
	putKV(t, root, "kapgw/db", map[string]any{"password": "v1"})
	clk := newClock()
	kv := NewKV(connectToken(t, v.Addr, v.Token, time.Minute, 5*time.Minute), testLogger(t), clk.Now)
	ref := Ref{Scheme: SchemeVault, Mount: "kv", Path: "kapgw/db", Field: "password"}
	assertSecret(t, kv, ref, "v1", 1)

	v.seal(t)
	clk.advance(2 * time.Minute)
	assertSecret(t, kv, ref, "v1", 1)
	clk.advance(3 * time.Minute)
	if _, err := kv.Secret(context.Background(), ref); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("sealed past max age: err = %v, want ErrUnavailable", err)
	}

	v.unseal(t)
	putKV(t, root, "kapgw/db", map[string]any{"password": "v2"})
	assertSecret(t, kv, ref, "v2", 2)
}

func assertSecret(tb testing.TB, kv *KV, ref Ref, want string, wantVersion int) {
	tb.Helper()
	got, version, err := kv.SecretVersion(context.Background(), ref)
	if err != nil {
		tb.Fatalf("SecretVersion(%s): %v", ref, err)
	}
	// Test values only; never real secrets.
	if got != want || version != wantVersion {
		tb.Fatalf("SecretVersion(%s) = %q v%d, want %q v%d", ref, got, version, want, wantVersion)
	}
}
