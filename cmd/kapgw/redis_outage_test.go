package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/kapgw/kapgw/internal/kap/kaptest"
)

// TestRedisOutageThroughHTTP runs the gateway with its rate limits in a
// real redis-server, kills the server, and checks that every request is
// still served (under the in-process fallback, with RateLimit headers),
// that tokens are still issued, and that /metrics counts the fallback
// decisions. Redis coming back is picked up again.
func TestRedisOutageThroughHTTP(t *testing.T) {
	t.Parallel()
	srv := startRedis(t)
	g := startGateway(t, "--data-dir", t.TempDir(), "--redis-url", srv.url())
	clinic := g.as(g.login(t, "clinic-platform", "clinic", clinicScopes, nil))
	doc := kaptest.Example(kaptest.HomeDosing)
	if resp, body := clinic.do(t, http.MethodPut, "/kap/v1/episodes/ep-700001", "application/json", doc); resp.StatusCode != http.StatusCreated {
		t.Fatalf("PUT: %d %s", resp.StatusCode, body)
	}
	paths := []string{"/fhir/r4/Patient?_count=1", "/fhir/r4/Observation?_count=5", "/kap/v1/episodes/ep-700001"}
	served := func(when string) {
		t.Helper()
		for i := range 30 {
			p := paths[i%len(paths)]
			resp, body := clinic.do(t, http.MethodGet, p, "", nil)
			if resp.StatusCode != http.StatusOK || resp.Header.Get("RateLimit-Limit") == "" {
				t.Fatalf("%s: GET %s: %d (RateLimit-Limit %q): %.300s", when, p, resp.StatusCode, resp.Header.Get("RateLimit-Limit"), body)
			}
		}
	}
	served("redis up")

	srv.kill()
	served("redis down")
	// The token endpoint's per-address budget falls back too.
	partner := g.login(t, "ehr-a", "partner", []string{"system/*.rs"}, []string{"org-med-1"})
	if resp, body := g.as(partner).do(t, http.MethodGet, "/fhir/r4/Patient", "", nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("partner while redis is down: %d %.300s", resp.StatusCode, body)
	}
	resp, metrics := g.scrape(t)
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(metrics), "kapgw_ratelimit_fallbacks") {
		t.Fatalf("/metrics: %d, no kapgw_ratelimit_fallbacks counter:\n%.2000s", resp.StatusCode, metrics)
	}

	srv.start(t)
	served("redis back")
}

// redisProcess is a redis-server from KAPGW_TEST_REDIS_SERVER on a fixed
// loopback port, so it can be killed and started again at the same URL.
type redisProcess struct {
	bin, dir string
	port     int
	cmd      *exec.Cmd
}

func startRedis(t *testing.T) *redisProcess {
	t.Helper()
	bin := os.Getenv("KAPGW_TEST_REDIS_SERVER")
	if bin == "" {
		t.Fatal("KAPGW_TEST_REDIS_SERVER is not set: run scripts/test.sh, which installs redis-server")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	_ = ln.Close()
	r := &redisProcess{bin: bin, dir: t.TempDir(), port: port}
	r.start(t)
	t.Cleanup(r.kill)
	return r
}

func (r *redisProcess) url() string { return fmt.Sprintf("redis://127.0.0.1:%d/0", r.port) }

// start runs the server and waits until it answers PING.
func (r *redisProcess) start(t *testing.T) {
	t.Helper()
	r.cmd = exec.Command(r.bin, "--bind", "127.0.0.1", "--port", strconv.Itoa(r.port),
		"--save", "", "--appendonly", "no", "--dir", r.dir, "--logfile", r.dir+"/redis.log")
	if err := r.cmd.Start(); err != nil {
		t.Fatalf("start redis-server: %v", err)
	}
	rdb := redis.NewClient(&redis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", r.port), MaxRetries: -1})
	defer rdb.Close()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if err := rdb.Ping(context.Background()).Err(); err == nil {
			return
		} else if time.Now().After(deadline) {
			t.Fatalf("redis-server not ready after 10s: %v", err)
		}
	}
}

// kill ends the server abruptly, as a crash would.
func (r *redisProcess) kill() {
	if r.cmd == nil {
		return
	}
	_ = r.cmd.Process.Kill()
	_ = r.cmd.Wait()
	r.cmd = nil
}
