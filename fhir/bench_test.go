package fhir_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/kapgw/kapgw/fhir"
	"github.com/kapgw/kapgw/internal/auth"
	"github.com/kapgw/kapgw/internal/intake"
	"github.com/kapgw/kapgw/internal/kap/kaptest"
	"github.com/kapgw/kapgw/internal/store"
)

// benchServer starts the HTTP API over a store of the given kind.
func benchServer(b *testing.B, kind string) (*httptest.Server, *store.Store) {
	b.Helper()
	cfg := store.Config{DataDir: b.TempDir()}
	if kind == "postgres" {
		cfg.DatabaseURL = benchPostgres(b)
	}
	ctx := context.Background()
	st, err := store.Open(ctx, cfg, time.Now)
	if err != nil {
		b.Fatalf("open store: %v", err)
	}
	b.Cleanup(func() { st.Close() })
	if err := st.Migrate(ctx); err != nil {
		b.Fatal(err)
	}
	srv := startAuthedCaching(b, st, fhir.Options{
		Log:    slog.New(slog.NewJSONHandler(io.Discard, nil)),
		Intake: intake.New(st, time.Now, ""), Reader: st, Ready: st,
		MaxBodyBytes: 1 << 20, Now: time.Now,
	}, benchClientCache)
	srv.Client().Transport.(*bearerTransport).base.(*http.Transport).MaxIdleConnsPerHost = 64
	return srv, st
}

func benchPostgres(b *testing.B) string {
	b.Helper()
	base := os.Getenv("KAPGW_TEST_DATABASE_URL")
	if base == "" {
		b.Fatal("KAPGW_TEST_DATABASE_URL is not set: run through scripts/test.sh")
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(ctx)
	name := fmt.Sprintf("kapgw_bench_%d", time.Now().UnixNano())
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		b.Fatal(err)
	}
	u, err := url.Parse(base)
	if err != nil {
		b.Fatal(err)
	}
	u.Path = "/" + name
	return u.String()
}

// variant makes the n-th distinct copy of an example episode (new episode,
// patient and session ids), so every PUT writes a whole new episode.
func variant(doc []byte, n int) ([]byte, string) {
	id := fmt.Sprintf("ep-b%07d", n)
	out := bytes.ReplaceAll(doc, []byte("ep-700001"), []byte(id))
	out = bytes.ReplaceAll(out, []byte("pt-700001"), []byte(fmt.Sprintf("pt-b%07d", n)))
	return out, id
}

// BenchmarkIntake measures PUT /kap/v1/episodes end to end (HTTP, decode,
// validate, map, encode, one transaction) with 4 and 16 concurrent clients
// (on SQLite the episodes queued behind the single writer then share a
// commit, see docs/store.md "Group commit").
func BenchmarkIntake(b *testing.B) {
	for _, kind := range []string{"sqlite", "postgres"} {
		for _, clients := range []int{4, 16} {
			b.Run(fmt.Sprintf("%s/clients=%d", kind, clients), func(b *testing.B) {
				srv, _ := benchServer(b, kind)
				srv.Client().Transport.(*bearerTransport).base.(*http.Transport).MaxIdleConnsPerHost = clients
				benchIntake(b, srv, clients)
			})
		}
	}
}

// benchIntake PUTs a new variant of the home-dosing episode per iteration
// from clients goroutines; every PUT must answer 201.
func benchIntake(b *testing.B, srv *httptest.Server, clients int) {
	doc := kaptest.Example("home-dosing")
	var n atomic.Int64
	b.SetParallelism(max(1, clients/runtime.GOMAXPROCS(0)))
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			body, id := variant(doc, int(n.Add(1)))
			req, _ := http.NewRequest(http.MethodPut, srv.URL+"/kap/v1/episodes/"+id, bytes.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			resp, err := srv.Client().Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusCreated {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "episodes/s")
}

// BenchmarkReadByID measures GET /fhir/r4/{type}/{id} with 8 concurrent
// clients on loopback and reports throughput and latency percentiles.
func BenchmarkReadByID(b *testing.B) {
	for _, kind := range []string{"sqlite", "postgres"} {
		b.Run(kind, func(b *testing.B) {
			srv, st := benchServer(b, kind)
			benchReadByID(b, srv, st, 4)
		})
	}
	// A partner serving the episode's medical group: every read also runs
	// the patient-access filter.
	b.Run("sqlite/partner", func(b *testing.B) {
		srv, st := benchServer(b, "sqlite")
		key := registerClient(b, st, "ehr-bench", auth.KindPartner, []string{"system/*.rs"}, []string{"org-med-1"}, 1_000_000)
		tr := &http.Transport{MaxIdleConnsPerHost: 64}
		partner := &http.Client{Transport: &bearerTransport{base: tr, token: token(b, srv, "ehr-bench", key, "system/*.rs")}}
		benchReadByIDAs(b, srv, st, 4, partner)
	})
	// The practical limit: a bare net/http handler serving the same stored
	// JSON from a map in memory, loaded by the same clients in the same
	// process; the sqlite case's share of it is the read path's cost.
	b.Run("bare", func(b *testing.B) {
		srv, st := benchServer(b, "sqlite")
		vs := seedRead(b, srv, st)
		bodies := make(map[string][]byte, len(vs))
		for _, v := range vs {
			bodies["/fhir/r4/"+v.Type+"/"+v.ID] = v.Body
		}
		bare := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			body, ok := bodies[r.URL.Path]
			if !ok {
				http.NotFound(w, r)
				return
			}
			w.Header().Set("Content-Type", "application/fhir+json")
			_, _ = w.Write(body)
		}))
		b.Cleanup(bare.Close)
		loadReads(b, bare.URL, vs, 4, &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}})
	})
}

// benchReadByID seeds one episode through srv, then reads its resources by
// id with parallelism clients per GOMAXPROCS, and reports throughput and
// the p50/p99 latencies. Every read must answer 200.
func benchReadByID(b *testing.B, srv *httptest.Server, st *store.Store, parallelism int) {
	b.Helper()
	benchReadByIDAs(b, srv, st, parallelism, nil)
}

// benchReadByIDAs is benchReadByID with the reads sent by reader (nil: the
// server's clinic client).
func benchReadByIDAs(b *testing.B, srv *httptest.Server, st *store.Store, parallelism int, reader *http.Client) {
	b.Helper()
	if reader == nil {
		reader = srv.Client()
	}
	loadReads(b, srv.URL, seedRead(b, srv, st), parallelism, reader)
}

// seedRead stores one episode through srv and returns its resources.
func seedRead(b *testing.B, srv *httptest.Server, st *store.Store) []store.Version {
	b.Helper()
	body, id := variant(kaptest.Example("home-dosing"), 1)
	req, _ := http.NewRequest(http.MethodPut, srv.URL+"/kap/v1/episodes/"+id, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	resp, err := srv.Client().Do(req)
	if err != nil || resp.StatusCode != http.StatusCreated {
		b.Fatalf("seed episode: %v", err)
	}
	resp.Body.Close()
	vs, err := st.EpisodeResources(context.Background(), id)
	if err != nil || len(vs) == 0 {
		b.Fatalf("seeded resources: %v", err)
	}
	return vs
}

// loadReads GETs base/fhir/r4/{type}/{id} of vs in turn from parallelism
// clients per GOMAXPROCS sending through reader, and reports throughput and
// the p50/p99 latencies. Every read must answer 200.
func loadReads(b *testing.B, base string, vs []store.Version, parallelism int, reader *http.Client) {
	b.Helper()
	var mu sync.Mutex
	var lat []time.Duration
	var n atomic.Int64
	b.SetParallelism(parallelism)
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		local := make([]time.Duration, 0, 1024)
		for pb.Next() {
			v := vs[int(n.Add(1))%len(vs)]
			t0 := time.Now()
			resp, err := reader.Get(base + "/fhir/r4/" + v.Type + "/" + v.ID)
			if err != nil {
				b.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
			local = append(local, time.Since(t0))
		}
		mu.Lock()
		lat = append(lat, local...)
		mu.Unlock()
	})
	elapsed := time.Since(start)
	slices.Sort(lat)
	if len(lat) > 0 {
		b.ReportMetric(float64(len(lat))/elapsed.Seconds(), "req/s")
		b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
		b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
	}
}
