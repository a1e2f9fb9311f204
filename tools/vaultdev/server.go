package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	credKubernetes "github.com/hashicorp/vault-plugin-auth-kubernetes"
	credAppRole "github.com/hashicorp/vault/builtin/credential/approle"
	credUserpass "github.com/hashicorp/vault/builtin/credential/userpass"
	logicalTransit "github.com/hashicorp/vault/builtin/logical/transit"
	"github.com/hashicorp/vault/helper/namespace"
	vaulthttp "github.com/hashicorp/vault/http"
	"github.com/hashicorp/vault/sdk/logical"
	"github.com/hashicorp/vault/vault"
)

// server is a running in-memory Vault core behind an HTTP listener.
type server struct {
	addr  string
	token string
	keys  [][]byte
	core  *vault.Core
	ln    net.Listener
	tb    *harness
}

// start builds an unsealed core, serves it on o.addr and prepares its mounts.
func start(o options, stderr io.Writer) (srv *server, err error) {
	h := &harness{name: "vaultdev"}
	defer func() {
		if r := recover(); r != nil {
			h.cleanup()
			f, ok := r.(fatal)
			if !ok {
				panic(r)
			}
			srv, err = nil, fmt.Errorf("start vault core: %s", string(f))
		}
	}()
	logger := hclog.New(&hclog.LoggerOptions{
		Name:   "vault",
		Output: stderr,
		Level:  hclog.LevelFromString(o.logLevel),
	})
	conf := &vault.CoreConfig{
		Logger:          logger,
		LogicalBackends: map[string]logical.Factory{"transit": logicalTransit.Factory},
		CredentialBackends: map[string]logical.Factory{
			"approle":    credAppRole.Factory,
			"kubernetes": credKubernetes.Factory,
			"userpass":   credUserpass.Factory,
		},
	}
	core, keys, root := vault.TestCoreUnsealedWithConfig(h, conf)

	ln, err := net.Listen("tcp", o.addr)
	if err != nil {
		h.cleanup()
		return nil, fmt.Errorf("listen on %s: %w", o.addr, err)
	}
	addr := "http://" + ln.Addr().String()
	vaulthttp.TestServerWithListener(h, ln, addr, core)
	srv = &server{addr: addr, token: root, keys: keys, core: core, ln: ln, tb: h}
	if err := srv.setup(o); err != nil {
		srv.close()
		return nil, err
	}
	return srv, nil
}

// setup creates the requested root token and the default mounts.
func (s *server) setup(o options) error {
	if o.token != "" && o.token != s.token {
		if err := s.write("auth/token/create", map[string]any{
			"id": o.token, "policies": []string{"root"}, "no_parent": true,
		}); err != nil {
			return fmt.Errorf("create root token: %w", err)
		}
		s.token = o.token
	}
	if !o.mounts {
		return nil
	}
	steps := []struct {
		path string
		data map[string]any
	}{
		{"sys/mounts/kv", map[string]any{"type": "kv", "options": map[string]any{"version": "2"}}},
		{"sys/mounts/transit", map[string]any{"type": "transit"}},
		{"sys/auth/approle", map[string]any{"type": "approle"}},
	}
	for _, st := range steps {
		if err := s.write(st.path, st.data); err != nil {
			return fmt.Errorf("mount %s: %w", st.path, err)
		}
	}
	return nil
}

// write performs an update request directly against the core.
func (s *server) write(path string, data map[string]any) error {
	req := &logical.Request{
		Operation:   logical.UpdateOperation,
		ClientToken: s.token,
		Path:        path,
		Data:        data,
	}
	ctx, cancel := context.WithTimeout(namespace.RootContext(context.Background()), 30*time.Second)
	defer cancel()
	resp, err := s.core.HandleRequest(ctx, req)
	if err != nil {
		return err
	}
	if resp.IsError() {
		return resp.Error()
	}
	return nil
}

// close stops the listener and shuts the core down.
func (s *server) close() {
	_ = s.ln.Close()
	s.tb.cleanup()
}

// fatal is the panic value harness uses to abort core construction.
type fatal string

// harness satisfies testing.TB for Vault's test helpers outside a test
// binary. The embedded interface is nil: only the methods below are used by
// the helpers vaultdev calls, and any other call panics loudly.
type harness struct {
	testing.TB
	name     string
	mu       sync.Mutex
	cleanups []func()
	failed   bool
}

func (h *harness) Helper()                      {}
func (h *harness) Name() string                 { return h.name }
func (h *harness) Log(args ...any)              {}
func (h *harness) Logf(format string, a ...any) {}

func (h *harness) Failed() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.failed
}

func (h *harness) Cleanup(f func()) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.cleanups = append(h.cleanups, f)
}

func (h *harness) Error(args ...any) { h.markFailed() }

func (h *harness) Errorf(format string, args ...any) { h.markFailed() }

func (h *harness) Fatal(args ...any) {
	h.markFailed()
	panic(fatal(fmt.Sprint(args...)))
}

func (h *harness) Fatalf(format string, args ...any) {
	h.markFailed()
	panic(fatal(fmt.Sprintf(format, args...)))
}

func (h *harness) markFailed() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.failed = true
}

// cleanup runs the registered cleanups in reverse order, once.
func (h *harness) cleanup() {
	h.mu.Lock()
	fs := h.cleanups
	h.cleanups = nil
	h.mu.Unlock()
	for i := len(fs) - 1; i >= 0; i-- {
		fs[i]()
	}
}
