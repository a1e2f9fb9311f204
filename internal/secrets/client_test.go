package secrets

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"
)

func TestConnectFailsClearlyWhenVaultUnreachable(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	addr := ln.Addr().String()
	ln.Close()
	_, err = Connect(context.Background(), testLogger(t), Config{Addr: "http://" + addr, Auth: AuthToken, Token: "t"})
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "connect to vault at "+addr) {
		t.Fatalf("Connect = %v, want ErrUnavailable naming %s", err, addr)
	}
}

func TestConnectFailsWhenVaultSealed(t *testing.T) {
	t.Parallel()
	v := startVault(t)
	v.seal(t)
	_, err := Connect(context.Background(), testLogger(t), Config{Addr: v.Addr, Auth: AuthToken, Token: v.Token})
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Connect = %v, want ErrUnavailable", err)
	}
}

func TestConnectRejectsBadToken(t *testing.T) {
	t.Parallel()
	addr, _ := testVault(t)
	_, err := Connect(context.Background(), testLogger(t), Config{Addr: addr, Auth: AuthToken, Token: "not-a-token"})
	if err == nil || errors.Is(err, ErrUnavailable) {
		t.Fatalf("Connect = %v, want a permission error", err)
	}
}

func TestAppRoleLoginRenewsAndLogsInAgain(t *testing.T) {
	t.Parallel()
	addr, token := testVault(t)
	root := rootClient(t, addr, token)
	path := testPath(t)
	putKV(t, root, path, map[string]any{"k": "v"})
	name := strings.ReplaceAll(path, "/", "-")
	if err := root.Sys().PutPolicy(name, `path "kv/data/`+path+`" { capabilities = ["read"] }`); err != nil {
		t.Fatalf("put policy: %v", err)
	}
	// Tokens live 1s and renew up to a 3s max TTL, then a new login is due.
	roleID, secretFile := createAppRole(t, root, name, map[string]any{
		"token_policies": []string{name}, "token_ttl": "1s", "token_max_ttl": "3s",
	})

	c, err := Connect(context.Background(), testLogger(t), Config{
		Addr: addr, Auth: AuthAppRole, RoleID: roleID, SecretIDFile: secretFile,
	})
	if err != nil {
		t.Fatalf("Connect: %v", err)
	}
	first, start := c.api.Token(), time.Now()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()

	deadline := time.Now().Add(20 * time.Second)
	for c.api.Token() == first {
		if time.Now().After(deadline) {
			t.Fatal("no new login after the token's max TTL")
		}
		time.Sleep(100 * time.Millisecond)
	}
	// Without renewal the 1s token would be replaced before 1s has passed.
	if waited := time.Since(start); waited < 1500*time.Millisecond {
		t.Fatalf("logged in again after %v, want renewals up to the 3s max TTL first", waited)
	}
	kv := NewKV(c, testLogger(t), time.Now)
	if _, err := kv.Secret(context.Background(), Ref{Scheme: SchemeVault, Mount: "kv", Path: path, Field: "k"}); err != nil {
		t.Fatalf("read with the new token: %v", err)
	}
}

// createAppRole creates (or updates) AppRole role name with roleData and
// returns its role id and a file holding a new secret id.
func createAppRole(tb testing.TB, root *api.Client, name string, roleData map[string]any) (roleID, secretFile string) {
	tb.Helper()
	rolePath := "auth/approle/role/" + name
	if _, err := root.Logical().Write(rolePath, roleData); err != nil {
		tb.Fatalf("create approle role: %v", err)
	}
	rs, err := root.Logical().Read(rolePath + "/role-id")
	if err != nil {
		tb.Fatalf("read role id: %v", err)
	}
	ss, err := root.Logical().Write(rolePath+"/secret-id", nil)
	if err != nil {
		tb.Fatalf("create secret id: %v", err)
	}
	secretFile = filepath.Join(tb.TempDir(), "secret-id")
	if err := os.WriteFile(secretFile, []byte(ss.Data["secret_id"].(string)+"\n"), 0o600); err != nil {
		tb.Fatalf("write secret id: %v", err)
	}
	return rs.Data["role_id"].(string), secretFile
}
