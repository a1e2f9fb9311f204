package secrets

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// countingTransport counts the round trips that reach it.
type countingTransport struct {
	next http.RoundTripper
	n    *atomic.Int64
}

func (c countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return c.next.RoundTrip(r)
}

func TestInstrumentWrapsCallsAndCountsFailures(t *testing.T) {
	t.Parallel()
	v := startVault(t)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	c, err := Connect(context.Background(), log, Config{Addr: v.Addr, Auth: AuthToken, Token: v.Token, RequestTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	var calls atomic.Int64
	var mu sync.Mutex
	var classes []string
	err = c.Instrument(func(rt http.RoundTripper) http.RoundTripper { return countingTransport{rt, &calls} },
		func(_ context.Context, class string) { mu.Lock(); classes = append(classes, class); mu.Unlock() })
	if err != nil {
		t.Fatal(err)
	}
	kv := NewKV(c, log, time.Now)
	ref := Ref{Scheme: SchemeVault, Mount: "secret", Path: "kapgw/none", Field: "x"}
	_, _ = kv.Secret(context.Background(), ref) // answered: not found or forbidden, not a failure of Vault
	if calls.Load() == 0 {
		t.Fatal("the wrapped transport saw no call")
	}
	v.stop(t)
	if _, err := NewKV(c, log, time.Now).Secret(context.Background(), ref); err == nil {
		t.Fatal("read from a stopped Vault succeeded")
	}
	mu.Lock()
	defer mu.Unlock()
	if !slices.Contains(classes, "transport") {
		t.Errorf("error classes %v, want transport after Vault stopped", classes)
	}
}
