package ratelimit

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// limiter is what the shared behaviour suite needs from Local and Redis.
type limiter interface {
	Allow(ctx context.Context, key string, l Limit) (Result, error)
}

// clock is a settable time source for Local.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock {
	return &clock{now: time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)}
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// logBuffer collects log output from concurrent writers.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// count returns how many log lines contain s.
func (b *logBuffer) count(s string) int {
	return strings.Count(b.String(), s)
}

func newLogger(tb testing.TB) (*slog.Logger, *logBuffer) {
	tb.Helper()
	buf := &logBuffer{}
	return slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug})), buf
}

// fallbackCounter counts fallback decisions.
type fallbackCounter struct{ n atomic.Int64 }

func (c *fallbackCounter) count(context.Context) { c.n.Add(1) }

// mustEnv returns a variable that scripts/test.sh exports, failing the test
// when it is missing: these tests need a real Redis and never skip.
func mustEnv(tb testing.TB, name string) string {
	tb.Helper()
	v := os.Getenv(name)
	if v == "" {
		tb.Fatalf("%s is not set: run the tests through scripts/test.sh, which starts redis-server", name)
	}
	return v
}

// uniquePrefix returns a key prefix of its own for one test run, so that
// parallel tests and earlier runs on the shared server cannot interfere.
func uniquePrefix(tb testing.TB) string {
	tb.Helper()
	return fmt.Sprintf("kapgw:rl:test:%s:%s:", tb.Name(), rand.Text()[:10])
}

// newClient returns a client for url built from RedisOptions. With patient
// set, its timeouts are relaxed so that a busy test machine cannot turn a
// slow answer into a fallback decision in tests of the algorithm itself.
func newClient(tb testing.TB, url string, patient bool) *redis.Client {
	tb.Helper()
	opts, err := RedisOptions(url)
	if err != nil {
		tb.Fatalf("redis options: %v", err)
	}
	if patient {
		opts.ReadTimeout = 5 * time.Second
		opts.WriteTimeout = 5 * time.Second
		opts.PoolTimeout = 5 * time.Second
		opts.DialTimeout = 5 * time.Second
	}
	rdb := redis.NewClient(opts)
	tb.Cleanup(func() { _ = rdb.Close() })
	return rdb
}

// newSharedRedis returns a Redis limiter on the test server from
// KAPGW_TEST_REDIS_URL, under a key prefix of its own, and its fallback
// counter.
func newSharedRedis(tb testing.TB) (*Redis, *fallbackCounter) {
	tb.Helper()
	rdb := newClient(tb, mustEnv(tb, "KAPGW_TEST_REDIS_URL"), true)
	log, _ := newLogger(tb)
	fc := &fallbackCounter{}
	r := NewRedis(rdb, NewLocal(time.Now), log,
		WithKeyPrefix(uniquePrefix(tb)), WithTimeout(10*time.Second), WithFallbackCounter(fc.count))
	return r, fc
}

// redisServer is a redis-server process of a test's own, which the test may
// stop, freeze and restart to simulate outages.
type redisServer struct {
	bin  string
	dir  string
	port int
	cmd  *exec.Cmd
}

// startRedisServer starts a redis-server from KAPGW_TEST_REDIS_SERVER on a
// free loopback port and stops it when the test ends.
func startRedisServer(tb testing.TB) *redisServer {
	tb.Helper()
	s := &redisServer{bin: mustEnv(tb, "KAPGW_TEST_REDIS_SERVER"), dir: tb.TempDir(), port: freePort(tb)}
	s.start(tb)
	tb.Cleanup(func() { s.kill(tb) })
	return s
}

func (s *redisServer) url() string {
	return fmt.Sprintf("redis://127.0.0.1:%d/0", s.port)
}

// start (re)starts the server on its port and waits until it answers.
func (s *redisServer) start(tb testing.TB) {
	tb.Helper()
	s.cmd = exec.Command(s.bin, "--bind", "127.0.0.1", "--port", strconv.Itoa(s.port),
		"--save", "", "--appendonly", "no", "--dir", s.dir, "--logfile", s.dir+"/redis.log")
	if err := s.cmd.Start(); err != nil {
		tb.Fatalf("start redis-server: %v", err)
	}
	rdb := redis.NewClient(&redis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", s.port), MaxRetries: -1})
	defer rdb.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := rdb.Ping(context.Background()).Err()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("redis-server on port %d not ready after 10s: %v (log in %s)", s.port, err, s.dir)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// kill ends the server abruptly, as a crash would.
func (s *redisServer) kill(tb testing.TB) {
	tb.Helper()
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGCONT) // a frozen process must wake to die
	_ = s.cmd.Process.Kill()
	_ = s.cmd.Wait()
	s.cmd = nil
}

// freeze stops the process without closing its sockets, as a hung server
// or a dropped network would: requests get no answer at all.
func (s *redisServer) freeze(tb testing.TB) {
	tb.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		tb.Fatalf("freeze redis-server: %v", err)
	}
}

func (s *redisServer) thaw(tb testing.TB) {
	tb.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		tb.Fatalf("thaw redis-server: %v", err)
	}
}

// freePort returns a loopback TCP port nobody listens on right now.
func freePort(tb testing.TB) int {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("find a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// allow calls l.Allow and fails the test on an error.
func allow(tb testing.TB, l limiter, key string, limit Limit) Result {
	tb.Helper()
	r, err := l.Allow(context.Background(), key, limit)
	if err != nil {
		tb.Fatalf("Allow(%s): %v", key, err)
	}
	return r
}
