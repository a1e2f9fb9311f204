package store

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"testing"
	"time"
)

// BenchmarkAddExchanges writes batches of 256 pull rows (random trace ids,
// as partner reads make them) per transaction, as the exchange log's
// background batcher does: one statement per row against 64-row
// statements (what AddExchanges picks per database is in exchangeInserts).
// ns/op is per row.
func BenchmarkAddExchanges(b *testing.B) {
	for name, open := range map[string]opener{"sqlite": openSQLiteTest, "postgres": openPostgresTest} {
		for _, how := range []string{"row-by-row", "multi-row"} {
			b.Run(name+"/"+how, func(b *testing.B) {
				s := migrated(b, open, time.Now)
				ctx := context.Background()
				batch := make([]Exchange, 256)
				b.ResetTimer()
				for done := 0; done < b.N; done += len(batch) {
					for i := range batch {
						tid := make([]byte, 16)
						_, _ = rand.Read(tid)
						batch[i] = Exchange{At: time.Now(), Kind: "pull", Direction: "in", TraceID: hex.EncodeToString(tid),
							PartnerID: "ehr-1", Refs: []string{fmt.Sprintf("Observation/obs-%d", done+i)},
							Operation: "GET /fhir/r4/:type/:id", Status: "ok", Code: "200", Duration: time.Millisecond}
					}
					var stmts []stmt
					if how != "row-by-row" {
						rows := make([][]any, len(batch))
						for i, e := range batch {
							rows[i] = exchangeRow(e)
						}
						stmts = insertRows("insert exchange", exchangeInsertPrefix, rows)
					} else {
						for _, e := range batch {
							stmts = append(stmts, exchangeInsert(e))
						}
					}
					err := s.write(ctx, "add exchanges", func(tx txn) error { return tx.execBatch(ctx, stmts) })
					if err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
