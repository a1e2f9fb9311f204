package store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kapgw/kapgw/fhir/fhirjson"
	"github.com/kapgw/kapgw/internal/kap"
	"github.com/kapgw/kapgw/internal/kap/kaptest"
	"github.com/kapgw/kapgw/mappers"
)

// mappedEpisode maps the n-th distinct copy of the home-dosing example (new
// episode and patient ids) into the change intake would write: real FHIR
// bodies, so the search index gets the rows a real episode makes.
func mappedEpisode(tb testing.TB, n int) (string, EpisodeChange) {
	tb.Helper()
	id := fmt.Sprintf("ep-m%07d", n)
	doc := bytes.ReplaceAll(kaptest.Example("home-dosing"), []byte("ep-700001"), []byte(id))
	doc = bytes.ReplaceAll(doc, []byte("pt-700001"), []byte(fmt.Sprintf("pt-m%07d", n)))
	ep, issues := kap.Decode(doc)
	if issues != nil {
		tb.Fatalf("decode: %v", issues)
	}
	sum := sha256.Sum256(doc)
	digest := hex.EncodeToString(sum[:])
	rs, err := mappers.Map(ep, mappers.Options{Recorded: time.Now(), DocumentDigest: digest})
	if err != nil {
		tb.Fatalf("map: %v", err)
	}
	c := EpisodeChange{Document: doc, Digest: digest, Removed: map[string]bool{}}
	for _, r := range rs {
		body, err := fhirjson.Marshal(r.Value)
		if err != nil {
			tb.Fatalf("encode %s: %v", r.Type, err)
		}
		c.Resources = append(c.Resources, Resource{Type: r.Type, ID: r.ID, PatientID: "pt", Body: body})
	}
	return id, c
}

// BenchmarkApplyMapped measures the store's part of intake alone: one
// transaction writing a mapped home-dosing episode (41 resources, indexed)
// as a new episode, one writer at a time. Mapping and encoding are done
// with the timer stopped.
func BenchmarkApplyMapped(b *testing.B) {
	for _, name := range []string{"sqlite", "postgres"} {
		open := map[string]opener{"sqlite": openSQLiteTest, "postgres": openPostgresTest}[name]
		b.Run(name, func(b *testing.B) {
			s := migrated(b, open, time.Now)
			_, warm := mappedEpisode(b, -1)
			apply(b, s, "warm-up", warm)
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				b.StopTimer()
				id, c := mappedEpisode(b, i)
				b.StartTimer()
				apply(b, s, id, c)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "episodes/s")
		})
	}
}

// BenchmarkApplyMappedConcurrent is BenchmarkApplyMapped with several
// writers at once, as intake has under load: on SQLite the episodes queued
// behind the single writer then share transactions (group commit). Every
// episode is mapped before the timer starts.
func BenchmarkApplyMappedConcurrent(b *testing.B) {
	for _, name := range []string{"sqlite", "postgres"} {
		open := map[string]opener{"sqlite": openSQLiteTest, "postgres": openPostgresTest}[name]
		for _, writers := range []int{4, 16} {
			b.Run(fmt.Sprintf("%s/writers=%d", name, writers), func(b *testing.B) {
				s := migrated(b, open, time.Now)
				_, warm := mappedEpisode(b, -1)
				apply(b, s, "warm-up", warm)
				ids := make([]string, b.N)
				changes := make([]EpisodeChange, b.N)
				for i := range b.N {
					ids[i], changes[i] = mappedEpisode(b, i)
				}
				var next atomic.Int64
				b.ResetTimer()
				run(b, writers, func(int) error {
					for i := int(next.Add(1)) - 1; i < b.N; i = int(next.Add(1)) - 1 {
						c := changes[i]
						s.Prepare(&c)
						if _, err := s.ApplyEpisode(context.Background(), ids[i], func([]byte, string) (EpisodeChange, error) { return c, nil }); err != nil {
							return err
						}
					}
					return nil
				})
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "episodes/s")
			})
		}
	}
}
