package fhir_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/kapgw/kapgw/fhir"
	"github.com/kapgw/kapgw/internal/auth"
	"github.com/kapgw/kapgw/internal/intake"
	"github.com/kapgw/kapgw/internal/kap/kaptest"
	"github.com/kapgw/kapgw/internal/ratelimit"
	"github.com/kapgw/kapgw/internal/store"
)

// openStore opens a migrated SQLite store in a fresh directory.
func openStore(t *testing.T) *store.Store {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, store.Config{DataDir: t.TempDir()}, time.Now)
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.Migrate(ctx); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	return st
}

func options(st *store.Store) fhir.Options {
	return fhir.Options{Log: slog.New(slog.NewJSONHandler(io.Discard, nil)), Intake: intake.New(st, time.Now, ""),
		Reader: st, Ready: st, MaxBodyBytes: maxBody, Now: time.Now}
}

// get sends a GET with the given bearer token ("" for none).
func get(t *testing.T, url, tok string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

func TestSMARTConfiguration(t *testing.T) {
	t.Parallel()
	srv := startAuthed(t, openStore(t), options(openStore(t)))
	for _, path := range []string{"/.well-known/smart-configuration", "/fhir/r4/.well-known/smart-configuration"} {
		resp, body := get(t, srv.URL+path, "")
		var doc map[string]any
		if resp.StatusCode != 200 || json.Unmarshal(body, &doc) != nil || doc["token_endpoint"] != srv.URL+"/auth/token" {
			t.Fatalf("%s: %d %s", path, resp.StatusCode, body)
		}
	}
}

// TestNothingIsOpen: without a token every intake and FHIR route answers
// 401; a partner token cannot write or read episodes (403); a handler built
// without an Authenticator refuses everything.
func TestNothingIsOpen(t *testing.T) {
	t.Parallel()
	st := openStore(t)
	srv := startAuthed(t, st, options(st))
	body := kaptest.Example(kaptest.HomeDosing)
	var ep struct{ ID string }
	_ = json.Unmarshal(body, &ep)
	resp, b := send(t, srv, http.MethodPut, "/kap/v1/episodes/"+ep.ID, "application/json", body)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("clinic PUT: %d %s", resp.StatusCode, b)
	}
	for _, path := range []string{"/kap/v1/episodes/" + ep.ID, "/kap/v1/episodes/" + ep.ID + "/fhir", "/fhir/r4/Patient/x"} {
		resp, body := get(t, srv.URL+path, "")
		oo := decodeOutcome(t, resp, body)
		if resp.StatusCode != http.StatusUnauthorized || oo.Issue[0].Code != "login" || resp.Header.Get("WWW-Authenticate") == "" {
			t.Fatalf("%s without token: %d %+v", path, resp.StatusCode, oo)
		}
		if resp, _ := get(t, srv.URL+path, "forged.token.here"); resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("%s with a forged token: %d", path, resp.StatusCode)
		}
	}
	key := registerClient(t, st, "ehr-a", auth.KindPartner, []string{"system/*.rs", "kap/episodes.write"}, []string{"org-med-1"}, 100)
	if status, out := requestToken(t, srv, "ehr-a", key, "kap/episodes.write"); status != http.StatusBadRequest || out.Error != "invalid_scope" {
		t.Fatalf("partner asking for kap/episodes.write: %d %+v", status, out)
	}
	tok := token(t, srv, "ehr-a", key, "system/*.rs")
	for _, path := range []string{"/kap/v1/episodes/" + ep.ID, "/kap/v1/episodes/" + ep.ID + "/fhir"} {
		if resp, _ := get(t, srv.URL+path, tok); resp.StatusCode != http.StatusForbidden {
			t.Fatalf("partner GET %s: %d, want 403", path, resp.StatusCode)
		}
	}
	req, _ := http.NewRequest(http.MethodPut, srv.URL+"/kap/v1/episodes/"+ep.ID, nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "application/json")
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("partner PUT: %v %v, want 403", resp.StatusCode, err)
	}

	open := httptest.NewServer(fhir.NewHandler(options(st)))
	t.Cleanup(open.Close)
	if resp, _ := get(t, open.URL+"/fhir/r4/Patient/x", tok); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("handler without Authenticator: %d, want 401", resp.StatusCode)
	}
}

// TestTokenEndpointErrorsAreOAuthJSON checks the endpoint's own answers.
func TestTokenEndpointErrorsAreOAuthJSON(t *testing.T) {
	t.Parallel()
	st := openStore(t)
	srv := startAuthed(t, st, options(st))
	resp, err := http.Post(srv.URL+"/auth/token", "application/x-www-form-urlencoded", nil)
	if err != nil {
		t.Fatal(err)
	}
	var out map[string]string
	_ = json.NewDecoder(resp.Body).Decode(&out)
	resp.Body.Close()
	if resp.StatusCode != 400 || out["error"] != "invalid_request" || resp.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("empty form: %d %v", resp.StatusCode, out)
	}
	key := registerClient(t, st, "ehr-x", auth.KindPartner, []string{"system/*.rs"}, nil, 10)
	if err := st.SetClientDisabled(context.Background(), "ehr-x", true); err != nil {
		t.Fatal(err)
	}
	if status, out := requestToken(t, srv, "ehr-x", key, "system/*.rs"); status != 401 || out.Error != "invalid_client" || out.AccessToken != "" {
		t.Fatalf("disabled client: %d %+v", status, out)
	}
}

// redisLimiter is the real Redis limiter on KAPGW_TEST_REDIS_URL under a
// fresh key prefix.
func redisLimiter(t *testing.T) *ratelimit.Redis {
	t.Helper()
	u := os.Getenv("KAPGW_TEST_REDIS_URL")
	if u == "" {
		t.Fatal("KAPGW_TEST_REDIS_URL is not set: run scripts/test.sh, which starts Redis")
	}
	opts, err := ratelimit.RedisOptions(u)
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opts)
	t.Cleanup(func() { rdb.Close() })
	if err := rdb.Ping(context.Background()).Err(); err != nil {
		t.Fatalf("redis: %v", err)
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	return ratelimit.NewRedis(rdb, ratelimit.NewLocal(time.Now), slog.New(slog.NewJSONHandler(io.Discard, nil)),
		ratelimit.WithKeyPrefix("kapgw:test:"+hex.EncodeToString(b[:])+":"), ratelimit.WithTimeout(time.Second))
}

// TestRateLimits spends a partner's registry budget and the token
// endpoint's per-address budget in Redis: RateLimit-* on every response,
// 429 throttled with Retry-After when spent.
func TestRateLimits(t *testing.T) {
	t.Parallel()
	st := openStore(t)
	o := options(st)
	o.RateLimits = fhir.RateLimits{Limiter: redisLimiter(t), Token: ratelimit.PerMinute(6)}
	srv := startAuthed(t, st, o) // the clinic's token is the address's first
	key := registerClient(t, st, "ehr-slow", auth.KindPartner, []string{"system/*.rs"}, nil, 3)
	tok := token(t, srv, "ehr-slow", key, "system/*.rs")

	var last *http.Response
	var lastBody []byte
	for i := range 4 {
		last, lastBody = get(t, srv.URL+"/fhir/r4/Patient/none", tok)
		if last.Header.Get("RateLimit-Limit") != "3" {
			t.Fatalf("request %d: RateLimit-Limit %q", i, last.Header.Get("RateLimit-Limit"))
		}
		if i < 3 && (last.StatusCode == http.StatusTooManyRequests || last.Header.Get("RateLimit-Remaining") != strconv.Itoa(2-i)) {
			t.Fatalf("request %d: %d, remaining %q", i, last.StatusCode, last.Header.Get("RateLimit-Remaining"))
		}
	}
	oo := decodeOutcome(t, last, lastBody)
	if last.StatusCode != http.StatusTooManyRequests || oo.Issue[0].Code != "throttled" || last.Header.Get("Retry-After") == "" ||
		last.Header.Get("RateLimit-Reset") == "" {
		t.Fatalf("4th request: %d %+v %v", last.StatusCode, oo, last.Header)
	}

	// 6 per minute per address: two tokens are spent, four are left.
	for i := range 5 {
		status, out := requestToken(t, srv, "ehr-slow", key, "system/*.rs")
		if i < 4 && status != http.StatusOK {
			t.Fatalf("token %d: %d %+v", i, status, out)
		}
		if i == 4 && status != http.StatusTooManyRequests {
			t.Fatalf("token %d: %d, want 429", i, status)
		}
	}
}
