package auth_test

import (
	"context"
	"crypto"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/kapgw/kapgw/internal/auth"
	"github.com/kapgw/kapgw/internal/store"
)

// jwksServer serves a JWK Set with the given Cache-Control and counts
// fetches.
func jwksServer(t *testing.T, cacheControl string, keys map[string]crypto.Signer) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var set jose.JSONWebKeySet
	for kid, k := range keys {
		set.Keys = append(set.Keys, jose.JSONWebKey{Key: k.Public(), KeyID: kid})
	}
	body, _ := json.Marshal(set)
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		n.Add(1)
		w.Header().Set("Cache-Control", cacheControl)
		_, _ = w.Write(body)
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

func TestKeysFromURLCachedPerCacheControl(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv, fetches := jwksServer(t, "max-age=60", map[string]crypto.Signer{"k1": ecKey(t), "k2": rsaKey(t)})
	now := time.Now()
	clock := func() time.Time { return now }
	keys := auth.NewKeys(clock, auth.AllowLoopback())
	c := store.Client{ID: "ehr", JWKSURL: srv.URL}
	for range 3 {
		found, err := keys.Find(ctx, c, "k1")
		if err != nil || len(found) != 1 {
			t.Fatalf("find k1: %v, %d keys", err, len(found))
		}
	}
	if fetches.Load() != 1 {
		t.Fatalf("%d fetches within max-age, want 1", fetches.Load())
	}
	// An unknown kid fetches again, but not more than once per 30 s.
	for range 3 {
		if found, _ := keys.Find(ctx, c, "k9"); len(found) != 0 {
			t.Fatal("found k9")
		}
	}
	if fetches.Load() != 1 {
		t.Fatalf("%d fetches, want 1: an unknown kid refetched within 30 s", fetches.Load())
	}
	now = now.Add(61 * time.Second)
	if _, err := keys.Find(ctx, c, "k1"); err != nil || fetches.Load() != 2 {
		t.Fatalf("after max-age: %v, %d fetches, want 2", err, fetches.Load())
	}
}

func TestKeysRefuseNonPublicURLs(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv, fetches := jwksServer(t, "", map[string]crypto.Signer{"k1": ecKey(t)})
	keys := auth.NewKeys(time.Now) // no loopback
	for _, u := range []string{srv.URL, "https://127.0.0.1:1/jwks", "https://10.0.0.1/jwks", "https://169.254.169.254/latest",
		"https://[::1]/jwks", "https://localhost/jwks", "file:///etc/passwd"} {
		if _, err := keys.Find(ctx, store.Client{ID: "ehr", JWKSURL: u}, "k1"); err == nil {
			t.Errorf("fetched %s", u)
		}
	}
	if fetches.Load() != 0 {
		t.Fatal("the loopback server was reached")
	}
}

func TestParseJWKSRefusesPrivateKeys(t *testing.T) {
	t.Parallel()
	k := ecKey(t)
	b, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: k, KeyID: "k1"}}})
	if _, err := auth.ParseJWKS(b); err == nil {
		t.Fatal("a private key was accepted")
	}
}
