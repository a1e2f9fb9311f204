package secrets

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"
)

// TestGatewayPolicyAllowsExactlyWhatTheGatewayNeeds logs in through AppRole
// with deploy/vault/policies/kapgw-gateway.hcl and checks that the gateway's
// own calls work and that neighbouring paths are refused.
func TestGatewayPolicyAllowsExactlyWhatTheGatewayNeeds(t *testing.T) {
	t.Parallel()
	addr, token := testVault(t)
	root := rootClient(t, addr, token)
	policy, err := os.ReadFile(filepath.Join("..", "..", "deploy", "vault", "policies", "kapgw-gateway.hcl"))
	if err != nil {
		t.Fatalf("read policy: %v", err)
	}
	path := testPath(t)
	name := strings.ReplaceAll(path, "/", "-")
	if err := root.Sys().PutPolicy(name, string(policy)); err != nil {
		t.Fatalf("put policy: %v", err)
	}
	for key, typ := range map[string]string{"kapgw-token": "ecdsa-p384", "kapgw-rx": "ecdsa-p384"} {
		ensureTransitKey(t, root, key, typ)
	}
	putKV(t, root, path, map[string]any{"client_secret": "ok"})
	putKV(t, root, "other/"+path, map[string]any{"client_secret": "forbidden"})

	c := connectAppRole(t, root, addr, name)
	ctx := context.Background()
	kv := NewKV(c, testLogger(t), time.Now)
	if _, err := kv.Secret(ctx, Ref{Scheme: SchemeVault, Mount: "kv", Path: path, Field: "client_secret"}); err != nil {
		t.Fatalf("read kv/kapgw/...: %v", err)
	}
	if _, err := kv.Secret(ctx, Ref{Scheme: SchemeVault, Mount: "kv", Path: "other/" + path, Field: "client_secret"}); err == nil || errors.Is(err, ErrUnavailable) {
		t.Fatalf("read outside kapgw/: err = %v, want permission denied", err)
	}
	for _, key := range []string{"kapgw-token", "kapgw-rx"} {
		s, err := NewTransitSigner(ctx, c, "transit", key)
		if err != nil {
			t.Fatalf("NewTransitSigner(%s): %v", key, err)
		}
		signAndVerify(t, s)
	}
	denied := []func() error{
		func() error { _, err := c.api.Logical().List("kv/metadata/kapgw"); return err },
		func() error { _, err := c.api.KVv2("kv").Put(ctx, path, map[string]any{"x": "y"}); return err },
		func() error {
			_, err := c.api.Logical().Write("transit/sign/kapgw-token/sha2-256", map[string]any{"input": "YQ=="})
			return err
		},
		func() error { _, err := c.api.Logical().Write("transit/keys/kapgw-token/rotate", nil); return err },
		func() error { _, err := c.api.Logical().Read("transit/export/signing-key/kapgw-token"); return err },
		func() error { _, err := c.api.Logical().Read("sys/policies/acl/" + name); return err },
	}
	for i, call := range denied {
		var re *api.ResponseError
		if err := call(); !errors.As(err, &re) || re.StatusCode != 403 {
			t.Errorf("denied call %d: err = %v, want HTTP 403", i, err)
		}
	}
}

// ensureTransitKey creates a shared Transit key unless it exists.
func ensureTransitKey(tb testing.TB, root *api.Client, name, typ string) {
	tb.Helper()
	if s, err := root.Logical().Read("transit/keys/" + name); err == nil && s != nil {
		return
	}
	if _, err := root.Logical().Write("transit/keys/"+name, map[string]any{"type": typ}); err != nil {
		tb.Fatalf("create transit key %s: %v", name, err)
	}
}

// connectAppRole creates an AppRole bound to policy and connects with it.
func connectAppRole(tb testing.TB, root *api.Client, addr, policy string) *Client {
	tb.Helper()
	roleID, file := createAppRole(tb, root, policy, map[string]any{"token_policies": []string{policy}, "token_ttl": "5m"})
	c, err := Connect(context.Background(), testLogger(tb), Config{
		Addr: addr, Auth: AuthAppRole, RoleID: roleID, SecretIDFile: file,
	})
	if err != nil {
		tb.Fatalf("Connect with approle: %v", err)
	}
	return c
}
