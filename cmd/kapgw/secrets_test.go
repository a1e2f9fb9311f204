package main

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// serveErr runs `kapgw serve` expecting it to stop before listening.
func serveErr(t *testing.T, env map[string]string, flags ...string) error {
	t.Helper()
	args := append([]string{"kapgw", "serve", "--addr", "127.0.0.1:0", "--data-dir", t.TempDir()}, flags...)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	err := run(ctx, args, func(k string) string { return env[k] }, io.Discard, io.Discard)
	if err == nil {
		t.Fatal("serve started")
	}
	return err
}

func TestVaultUnreachableAtStartExits(t *testing.T) {
	t.Parallel()
	err := serveErr(t, map[string]string{"KAPGW_VAULT_ADDR": "http://127.0.0.1:1", "KAPGW_VAULT_TOKEN": "t"})
	if !strings.Contains(err.Error(), "connect to vault at 127.0.0.1:1") || !strings.Contains(err.Error(), "vault unavailable") {
		t.Errorf("error %q does not say Vault is unreachable", err)
	}
}

func TestProductionRefusesToStartWithoutVault(t *testing.T) {
	t.Parallel()
	err := serveErr(t, nil, "--profile", "production")
	if !strings.Contains(err.Error(), "refuses to start without Vault") {
		t.Errorf("error %q does not say production needs Vault", err)
	}
}

func TestProductionRefusesLocalRefsAndTokens(t *testing.T) {
	t.Parallel()
	env := map[string]string{"KAPGW_PROFILE": "production", "KAPGW_VAULT_ADDR": "http://127.0.0.1:1", "KAPGW_VAULT_TOKEN": "t"}
	if err := serveErr(t, env, "--database-url", "local:kv/kapgw/db#url"); !strings.Contains(err.Error(), "refuses local: secret refs") {
		t.Errorf("error %q does not refuse the local: ref", err)
	}
	if err := serveErr(t, env); !strings.Contains(err.Error(), "token auth is for development") {
		t.Errorf("error %q does not refuse token auth", err)
	}
}

func TestDevSecretStoreWithoutVault(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	g, logs := startHooked(t, hooks{}, func(string) string { return "" }, "--data-dir", dir)
	_ = g
	if !strings.Contains(logs.String(), "NO VAULT CONFIGURED") {
		t.Error("no loud warning about the development secret store")
	}
	info, err := os.Stat(filepath.Join(dir, "dev-secrets.json"))
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Errorf("dev store: %v, mode %v", err, info.Mode().Perm())
	}
}

func TestUnusableAuditJournalStopsStart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	// A file where the journal's directory belongs: the journal cannot be
	// opened or replayed, so serving would audit nothing.
	if err := os.WriteFile(filepath.Join(dir, "audit-journal"), []byte("not a directory"), 0o600); err != nil {
		t.Fatal(err)
	}
	err := serveErr(t, nil, "--data-dir", dir)
	if !strings.Contains(err.Error(), "AuditEvent journal") {
		t.Errorf("error %q does not name the AuditEvent journal", err)
	}
}
