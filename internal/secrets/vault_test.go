package secrets

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"
)

// testVault returns the shared test Vault started by scripts/deps/40-vault.sh.
func testVault(tb testing.TB) (addr, token string) {
	tb.Helper()
	addr, token = os.Getenv("KAPGW_TEST_VAULT_ADDR"), os.Getenv("KAPGW_TEST_VAULT_TOKEN")
	if addr == "" || token == "" {
		tb.Fatal("KAPGW_TEST_VAULT_ADDR and KAPGW_TEST_VAULT_TOKEN must be set; run scripts/test.sh")
	}
	return addr, token
}

// devVault is a private vaultdev process a test may stop or seal.
type devVault struct {
	Addr       string   `json:"addr"`
	Token      string   `json:"token"`
	UnsealKeys []string `json:"unseal_keys"`
	cmd        *exec.Cmd
	once       sync.Once
}

// startVault starts a private vaultdev from KAPGW_TEST_VAULTDEV_BIN.
func startVault(tb testing.TB) *devVault {
	tb.Helper()
	bin := os.Getenv("KAPGW_TEST_VAULTDEV_BIN")
	if bin == "" {
		tb.Fatal("KAPGW_TEST_VAULTDEV_BIN must be set; run scripts/test.sh")
	}
	cmd := exec.Command(bin, "-addr", "127.0.0.1:0")
	out, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatalf("vaultdev stdout: %v", err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatalf("start vaultdev: %v", err)
	}
	v := &devVault{cmd: cmd}
	tb.Cleanup(func() { v.stop(tb) })
	line, err := bufio.NewReader(out).ReadBytes('\n')
	if err != nil {
		tb.Fatalf("read vaultdev ready line: %v", err)
	}
	go io.Copy(io.Discard, out) //nolint:errcheck // drain until exit
	if err := json.Unmarshal(line, v); err != nil {
		tb.Fatalf("decode vaultdev ready line: %v", err)
	}
	return v
}

// stop kills the server, as a crash or network partition would.
func (v *devVault) stop(tb testing.TB) {
	tb.Helper()
	v.once.Do(func() {
		_ = v.cmd.Process.Kill()
		_ = v.cmd.Wait()
	})
}

// seal seals the server through the sys API.
func (v *devVault) seal(tb testing.TB) {
	tb.Helper()
	if err := rootClient(tb, v.Addr, v.Token).Sys().Seal(); err != nil {
		tb.Fatalf("seal: %v", err)
	}
}

// unseal unseals the server with its unseal keys.
func (v *devVault) unseal(tb testing.TB) {
	tb.Helper()
	c := rootClient(tb, v.Addr, v.Token)
	for _, k := range v.UnsealKeys {
		if _, err := c.Sys().Unseal(k); err != nil {
			tb.Fatalf("unseal: %v", err)
		}
	}
}

// rootClient returns a Vault client for arranging test state.
func rootClient(tb testing.TB, addr, token string) *api.Client {
	tb.Helper()
	c, err := api.NewClient(&api.Config{Address: addr, MaxRetries: 0, Timeout: 10 * time.Second})
	if err != nil {
		tb.Fatalf("vault client: %v", err)
	}
	c.SetToken(token)
	return c
}

// putKV writes a KV v2 secret at kv/<path>.
func putKV(tb testing.TB, c *api.Client, path string, data map[string]any) {
	tb.Helper()
	if _, err := c.KVv2("kv").Put(context.Background(), path, data); err != nil {
		tb.Fatalf("put kv/%s: %v", path, err)
	}
}

// connectToken connects with token auth and short test intervals.
func connectToken(tb testing.TB, addr, token string, refresh, maxStale time.Duration) *Client {
	tb.Helper()
	c, err := Connect(context.Background(), testLogger(tb), Config{
		Addr: addr, Auth: AuthToken, Token: token,
		RequestTimeout: 5 * time.Second, Refresh: refresh, MaxStale: maxStale,
	})
	if err != nil {
		tb.Fatalf("Connect: %v", err)
	}
	return c
}

// testLogger logs through the test's log.
func testLogger(tb testing.TB) *slog.Logger {
	tb.Helper()
	return slog.New(slog.NewTextHandler(tbWriter{tb}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tbWriter struct{ tb testing.TB }

func (w tbWriter) Write(p []byte) (int, error) {
	w.tb.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

// testPath returns a KV path under kapgw/test/ unique to the test and the
// run, since the shared Vault outlives a single `go test` run.
func testPath(tb testing.TB) string {
	tb.Helper()
	return "kapgw/test/" + strings.NewReplacer("/", "-", " ", "-").Replace(tb.Name()) + "-" + rand.Text()[:8]
}

// clock is a manual clock for cache tests.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}
