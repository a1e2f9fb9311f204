package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	gosync "sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/kapgw/kapgw/internal/fhirpeer"
	"github.com/kapgw/kapgw/internal/kap/kaptest"
	"github.com/kapgw/kapgw/internal/store"
)

// The crash test's load: crashEpisodes episodes of crashRevisions
// revisions each, sent by crashSenders clinic connections. The Medplum
// peer's in-memory search slows with every resource it holds (a few
// hundred ms a transaction at ~250), which bounds the episodes, not the
// changes.
const (
	crashEpisodes  = 12
	crashRevisions = 25
	crashSenders   = 4
	crashKills     = 5
)

// TestSyncCrashSQLite is the crash test on SQLite (see crashTest).
func TestSyncCrashSQLite(t *testing.T) {
	t.Parallel()
	crashTest(t, func(dir string) []string { return []string{"--data-dir", dir} })
}

// TestSyncCrashPostgres is the crash test on PostgreSQL (see crashTest).
func TestSyncCrashPostgres(t *testing.T) {
	t.Parallel()
	crashTest(t, func(dir string) []string { return []string{"--data-dir", dir, "--database-url", postgresURL(t)} })
}

// crashTest builds the kapgw binary, runs `kapgw serve` as a child process
// pushing to the Medplum peer behind the fault proxy (10% of requests
// fail in every way it knows), sends crashEpisodes×crashRevisions episode
// changes through the intake API, and kills the gateway with SIGKILL at
// random moments while it delivers, restarting it each time on the same
// database. When the outbox is empty it counts at the peer by identifier:
// exactly one copy of every resource we hold, each with the content of our
// latest version, nothing missing and nothing else; no dead letters.
func crashTest(t *testing.T, storeFlags func(dir string) []string) {
	ctx := context.Background()
	bin := buildKapgw(t)
	peer := fhirpeer.Start(t)
	fault := fhirpeer.NewFault(t, peer.Base)
	fault.Delay = 150 * time.Millisecond
	fault.Random(0.1, uint64(time.Now().UnixNano()))

	dir := t.TempDir()
	flags := storeFlags(dir)
	child := &crashChild{bin: bin, addr: freeAddr(t), flags: flags, logDir: dir}
	child.start(t)
	t.Cleanup(child.kill)
	g := &gateway{base: "http://" + child.addr, flags: flags}
	clinic := g.as(g.login(t, "clinic-platform", "clinic", clinicScopes, nil))
	g.login(t, "ehr-1", "partner", []string{"system/*.rs"}, []string{"org-thr-12"})
	g.syncCmd(t, "destination", "add", "--partner", "ehr-1", "--url", fault.Base, "--auth", "none",
		"--concurrency", "4", "--rate", "1000/s", "--sync-allow-loopback")

	began := time.Now()
	var sent atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		sendChanges(t, clinic, &sent)
	}()
	kills := 0
	for kills < crashKills {
		time.Sleep(time.Duration(1500+rand.IntN(3000)) * time.Millisecond)
		child.kill()
		kills++
		t.Logf("SIGKILL %d after %d accepted changes, %s", kills, sent.Load(), time.Since(began).Round(time.Millisecond))
		child.start(t)
	}
	<-done
	if t.Failed() {
		return
	}
	t.Logf("%d changes accepted in %s; faults met %v", sent.Load(), time.Since(began).Round(time.Millisecond), fault.Counts())

	st := openCrashStore(t, flags)
	t.Cleanup(func() {
		if t.Failed() {
			child.showLog(t)
		}
	})
	// A delivery the last kill left running waits jobRescueAfter (1 min)
	// and River's next rescuer pass before it is retried, then backs off
	// under the proxy's faults: on a loaded CI machine that took more than
	// 100 s once, with jobs still completing.
	waitOutboxEmpty(t, st, 180*time.Second)
	t.Logf("outbox empty %s after the start; %d deliveries needed more than one attempt", time.Since(began).Round(time.Millisecond),
		retried(t, st))
	want := ourResources(t, st)
	checkPeer(t, peer, want)
	dead, err := st.DeadLetters(ctx, true)
	if err != nil || len(dead) != 0 {
		t.Errorf("dead letters %+v, %v; want none", dead, err)
	}
}

// buildKapgw builds the real binary once per test.
func buildKapgw(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "kapgw")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// freeAddr returns a loopback address free now; the gateway keeps it
// across restarts, so tokens (issued for it) stay valid.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// crashChild is the gateway process.
type crashChild struct {
	bin, addr, logDir string
	flags             []string
	mu                gosync.Mutex
	cmd               *exec.Cmd
	runs              int
}

// start runs `kapgw serve` and waits until it is ready.
func (c *crashChild) start(t *testing.T) {
	t.Helper()
	c.mu.Lock()
	c.runs++
	logf, err := os.Create(filepath.Join(c.logDir, fmt.Sprintf("serve-%d.log", c.runs)))
	if err != nil {
		c.mu.Unlock()
		t.Fatal(err)
	}
	args := append([]string{"serve", "--addr", c.addr, "--metrics-addr", "off", "--client-cache", "0s",
		"--sync-allow-loopback=true"}, c.flags...)
	cmd := exec.Command(c.bin, args...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + c.logDir}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		c.mu.Unlock()
		t.Fatalf("start kapgw: %v", err)
	}
	c.cmd = cmd
	c.mu.Unlock()
	go func() { _ = cmd.Wait(); _ = logf.Close() }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get("http://" + c.addr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("kapgw run %d not ready within 30s (log %s)", c.runs, logf.Name())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// showLog logs the end of the last run's log.
func (c *crashChild) showLog(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(c.logDir, fmt.Sprintf("serve-%d.log", c.runs)))
	if err != nil {
		t.Log(err)
		return
	}
	t.Logf("end of kapgw run %d log:\n%s", c.runs, b[max(0, len(b)-6000):])
}

// kill sends SIGKILL and waits until the process is gone.
func (c *crashChild) kill() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cmd == nil {
		return
	}
	_ = c.cmd.Process.Signal(syscall.SIGKILL)
	for c.cmd.ProcessState == nil && c.cmd.Process.Signal(syscall.Signal(0)) == nil {
		time.Sleep(10 * time.Millisecond)
	}
	c.cmd = nil
}

// crashDoc is revision rev of episode n: its own episode, patient and MRN,
// a family name and title that change with every revision.
func crashDoc(t *testing.T, n, rev int) (string, []byte) {
	t.Helper()
	ep := fmt.Sprintf("ep-77%04d", n)
	var doc map[string]any
	if err := json.Unmarshal(kaptest.Example("home-dosing"), &doc); err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	for _, r := range [][2]string{{"ep-700001", ep}, {"pt-700001", fmt.Sprintf("pt-77%04d", n)}, {"MRN800001", fmt.Sprintf("MRN77%04d", n)}} {
		s = strings.ReplaceAll(s, r[0], r[1])
	}
	if err := json.Unmarshal([]byte(s), &doc); err != nil {
		t.Fatal(err)
	}
	doc["patient"].(map[string]any)["name"].(map[string]any)["family"] = fmt.Sprintf("Crash-r%d", rev)
	doc["title"] = fmt.Sprintf("Home dosing, revision %d", rev)
	out, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	return ep, out
}

// sendChanges PUTs every revision of every episode, revisions of one
// episode in order, re-sending a change until the gateway acknowledges it
// (the gateway may be dead or restarting), as the clinic platform does.
func sendChanges(t *testing.T, clinic *gateway, sent *atomic.Int64) {
	var wg gosync.WaitGroup
	for s := range crashSenders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for rev := range crashRevisions {
				for n := s; n < crashEpisodes; n += crashSenders {
					ep, doc := crashDoc(t, n, rev)
					if !putUntilAccepted(t, clinic, ep, doc) {
						return
					}
					sent.Add(1)
				}
			}
		}()
	}
	wg.Wait()
}

// putUntilAccepted sends one change until it gets 200 or 201, for at most
// a minute.
func putUntilAccepted(t *testing.T, clinic *gateway, ep string, doc []byte) bool {
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		req, err := http.NewRequest(http.MethodPut, clinic.base+"/kap/v1/episodes/"+ep, bytes.NewReader(doc))
		if err != nil {
			t.Error(err)
			return false
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+clinic.token)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusCreated {
				return true
			}
			if resp.StatusCode/100 == 4 && resp.StatusCode != http.StatusTooManyRequests {
				t.Errorf("PUT %s: status %d", ep, resp.StatusCode)
				return false
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Errorf("PUT %s not accepted within a minute", ep)
	return false
}

// openCrashStore opens the gateway's database alongside the running
// gateway.
func openCrashStore(t *testing.T, flags []string) *store.Store {
	t.Helper()
	var cfg store.Config
	for i := 0; i+1 < len(flags); i += 2 {
		switch flags[i] {
		case "--data-dir":
			cfg.DataDir = flags[i+1]
		case "--database-url":
			cfg.DatabaseURL = flags[i+1]
		}
	}
	st, err := store.Open(context.Background(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

// waitOutboxEmpty waits until no delivery job is left to run: every
// sync_push job completed (or cancelled into a dead letter).
func waitOutboxEmpty(t *testing.T, st *store.Store, timeout time.Duration) {
	t.Helper()
	const q = `SELECT COUNT(*) FROM river_job WHERE kind = 'sync_push' AND state NOT IN ('completed', 'cancelled', 'discarded')`
	deadline := time.Now().Add(timeout)
	for {
		n := countJobs(t, st, q)
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			states := map[string]int{}
			for _, state := range []string{"pending", "available", "running", "retryable", "scheduled"} {
				states[state] = countJobs(t, st, `SELECT COUNT(*) FROM river_job WHERE kind = 'sync_push' AND state = '`+state+`'`)
			}
			t.Fatalf("%d deliveries still pending after %s, by state %v", n, timeout, states)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// retried counts the delivery jobs that ran more than once: killed while
// running (rescued) or failed by the fault proxy.
func retried(t *testing.T, st *store.Store) int {
	t.Helper()
	return countJobs(t, st, `SELECT COUNT(*) FROM river_job WHERE kind = 'sync_push' AND attempt > 1`)
}

// countJobs runs a COUNT query q over River's tables on either database.
func countJobs(t *testing.T, st *store.Store, q string) int {
	t.Helper()
	var n int
	db, pool := st.JobDB()
	var err error
	if pool != nil {
		err = pool.QueryRow(context.Background(), q).Scan(&n)
	} else {
		err = db.QueryRow(q).Scan(&n)
	}
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// ourResources returns the current version of every keyed resource of the
// crash episodes, by "Type system|value".
func ourResources(t *testing.T, st *store.Store) map[string]json.RawMessage {
	t.Helper()
	out := map[string]json.RawMessage{}
	for n := range crashEpisodes {
		vs, err := st.EpisodeResources(context.Background(), fmt.Sprintf("ep-77%04d", n))
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range vs {
			var r fhirpeer.Resource
			if err := json.Unmarshal(v.Body, &r); err != nil {
				t.Fatal(err)
			}
			if k, ok := identKey(r); ok && !v.Deleted {
				out[k] = v.Body
			}
		}
	}
	if len(out) < crashEpisodes*10 {
		t.Fatalf("only %d keyed resources in %d episodes", len(out), crashEpisodes)
	}
	return out
}

// checkPeer counts the peer's resources by identifier: exactly one copy of
// each of ours, with our latest content (ids, meta and references aside),
// and nothing else.
func checkPeer(t *testing.T, peer *fhirpeer.Peer, want map[string]json.RawMessage) {
	t.Helper()
	types := map[string]bool{}
	for k := range want {
		types[k[:strings.Index(k, " ")]] = true
	}
	copies := map[string]int{}
	stale := 0
	for typ := range types {
		all, err := peer.All(context.Background(), typ)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range all {
			k, _ := identKey(r)
			copies[k]++
			if ours, ok := want[k]; ok && !reflect.DeepEqual(canonical(t, ours), canonical(t, r.Raw)) {
				if stale++; stale <= 3 {
					t.Errorf("%s at the peer is not our latest version:\n ours %s\npeer %s", k, ours, r.Raw)
				}
			}
		}
	}
	for k := range want {
		if copies[k] != 1 {
			t.Errorf("%s: %d copies at the peer, want 1", k, copies[k])
		}
	}
	for k, n := range copies {
		if _, ok := want[k]; !ok {
			t.Errorf("%s: %d copies at the peer of something we do not hold", k, n)
		}
	}
	if stale > 0 {
		t.Errorf("%d resources at the peer are not at our latest version", stale)
	}
	t.Logf("peer holds exactly one copy of each of our %d keyed resources", len(want))
}

// canonical is a resource without what the partner rewrites: ids, meta and
// reference values.
func canonical(t *testing.T, raw []byte) any {
	t.Helper()
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatal(err)
	}
	return strip(v)
}

func strip(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for _, k := range []string{"id", "meta", "reference"} {
			delete(x, k)
		}
		for k, c := range x {
			x[k] = strip(c)
		}
	case []any:
		for i, c := range x {
			x[i] = strip(c)
		}
	}
	return v
}
