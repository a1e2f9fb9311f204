package main

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/kapgw/kapgw/internal/store"
)

func TestExchangesCommandFilters(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	st, err := store.Open(ctx, store.Config{DataDir: dir}, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	for _, e := range []store.Exchange{
		{At: at, Kind: "intake", Direction: "in", TraceID: "4bf92f3577b34da6a3ce929d0e0e4736", EpisodeID: "ep-1", Status: "ok", Code: "201", Payload: "local:v1:secret"},
		{At: at, Kind: "pull", Direction: "in", TraceID: "00f067aa0ba902b7a3ce929d0e0e4736", PartnerID: "ehr-a", Refs: []string{"Patient/p1"}, Status: "ok", Code: "200"},
	} {
		if _, err := st.AddExchange(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	st.Close()
	var out bytes.Buffer
	err = run(ctx, []string{"kapgw", "exchanges", "--data-dir", dir, "--trace", "4bf92f3577b34da6a3ce929d0e0e4736"},
		func(string) string { return "" }, &out, io.Discard)
	if err != nil {
		t.Fatalf("kapgw exchanges: %v", err)
	}
	got := out.String()
	if !strings.Contains(got, "ep-1") || strings.Contains(got, "ehr-a") || strings.Contains(got, "local:v1") {
		t.Errorf("output:\n%s", got)
	}
	out.Reset()
	err = run(ctx, []string{"kapgw", "exchanges", "--data-dir", dir, "--partner", "ehr-a", "--json"},
		func(string) string { return "" }, &out, io.Discard)
	if err != nil || strings.Count(out.String(), "\n") != 1 || !strings.Contains(out.String(), `"Patient/p1"`) {
		t.Errorf("json output %q, %v", out.String(), err)
	}
	if err := run(ctx, []string{"kapgw", "exchanges", "--since", "monday"}, func(string) string { return "" }, io.Discard, io.Discard); exitCode(err) != 2 {
		t.Errorf("bad --since: %v", err)
	}
}
