package store

import (
	"context"
	"os"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// TestTracerSpans checks that both drivers make one span per statement,
// named by its operation, with neither statement text nor arguments.
func TestTracerSpans(t *testing.T) {
	t.Parallel()
	pg := os.Getenv("KAPGW_TEST_DATABASE_URL")
	if pg == "" {
		t.Fatal("KAPGW_TEST_DATABASE_URL is not set: run scripts/test.sh")
	}
	for _, url := range []string{"", pg} {
		exp := tracetest.NewInMemoryExporter()
		tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
		s, err := Open(context.Background(), Config{DataDir: t.TempDir(), DatabaseURL: url, Tracer: tp}, time.Now)
		if err != nil {
			t.Fatal(err)
		}
		const secret = "Zqcanary-argument"
		var n int
		err = s.drv.queryRow(context.Background(), `SELECT COUNT(*) FROM (SELECT $1 AS v) x WHERE x.v = $1`, secret).Scan(&n)
		s.Close()
		if err != nil || n != 1 {
			t.Fatalf("%s: query: %v (n=%d)", s.Dialect(), err, n)
		}
		found := false
		for _, sp := range exp.GetSpans() {
			for _, a := range sp.Attributes {
				if a.Value.Emit() == secret || len(a.Value.Emit()) > 6 && a.Value.Emit()[:6] == "SELECT" && a.Key != "db.operation.name" {
					t.Errorf("%s: span %s records %s", s.Dialect(), sp.Name, a.Key)
				}
			}
			if sp.Name == "SELECT" || sp.Name == "sql.conn.query" {
				found = true
			}
		}
		if !found {
			t.Errorf("%s: no span for the SELECT among %d spans", s.Dialect(), len(exp.GetSpans()))
		}
	}
}

func TestOperation(t *testing.T) {
	t.Parallel()
	for q, want := range map[string]string{"select 1": "SELECT", "\n  INSERT INTO x": "INSERT", "": "QUERY", "WITH(x)": "WITH"} {
		if got := operation(q); got != want {
			t.Errorf("operation(%q) = %q, want %q", q, got, want)
		}
	}
}
