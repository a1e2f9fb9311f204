package sync_test

import (
	"context"
	"regexp"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/kapgw/kapgw/internal/fhirpeer"
	"github.com/kapgw/kapgw/internal/store"
	kapsync "github.com/kapgw/kapgw/internal/sync"
)

// TestPushAttemptsInExchangeLog fails a delivery's first requests with a
// 500, a 429 and a dropped connection, and checks that each attempt is an
// outbound push row with its attempt number, status, class, duration,
// resource references, the job's trace id and the encrypted Bundle.
func TestPushAttemptsInExchangeLog(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	peer := fhirpeer.Start(t)
	fault := fhirpeer.NewFault(t, peer.Base)
	fault.Script(fhirpeer.Fail500, fhirpeer.Throttle429, fhirpeer.Drop)
	tp := sdktrace.NewTracerProvider()
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	rig := newPushRig(t, store.Destination{BaseURL: fault.Base, Auth: "none", Concurrency: 1, Rate: 1000,
		Allow: string(kapsync.AllowLoopback)}, noSecrets{}, tp)
	if _, err := rig.intake.Put(ctx, "ep-700001", homeDosing(t)); err != nil {
		t.Fatal(err)
	}
	want, err := rig.st.EpisodeResources(ctx, "ep-700001")
	if err != nil {
		t.Fatal(err)
	}
	rig.start(t)
	waitFor(t, 30*time.Second, "delivered", func() bool { return done(t, rig.st, want) })

	rows := pushRows(t, rig.st)
	if len(rows) < 4 {
		t.Fatalf("%d push rows, want at least 4: %+v", len(rows), rows)
	}
	first := []struct {
		attempt             int
		status, code, class string
	}{
		{1, "error", "500", "status"},
		{2, "error", "429", "throttled"},
		{3, "error", "", "transport"},
		{4, "ok", "200", ""},
	}
	traceID := regexp.MustCompile(`^[0-9a-f]{32}$`)
	for i, w := range first {
		e := rows[i]
		if e.Attempt != w.attempt || e.Status != w.status || e.Code != w.code || e.ErrorClass != w.class {
			t.Errorf("row %d: attempt %d status %q code %q class %q; want %+v", i, e.Attempt, e.Status, e.Code, e.ErrorClass, w)
		}
		if e.Direction != "out" || e.PartnerID != "ehr-1" || e.EpisodeID != "ep-700001" || e.Operation != "POST transaction" ||
			!traceID.MatchString(e.TraceID) || len(e.Refs) == 0 || !e.HasPayload {
			t.Errorf("row %d: %+v", i, e)
		}
		checkPayload(t, rig, e)
	}
	for _, e := range rows[3:] { // the other chunks of the fourth attempt
		if e.Status != "ok" || e.Attempt != 4 {
			t.Errorf("row after the faults: %+v", e)
		}
	}
}
