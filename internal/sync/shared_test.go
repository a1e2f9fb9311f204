package sync_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/kapgw/kapgw/internal/store"
	kapsync "github.com/kapgw/kapgw/internal/sync"
)

// TestSharedResourcesSentOnce puts eight episodes of eight patients at
// once; their deliveries run in parallel and all refer to the same
// organizations and practitioners. A partner that does not serialize
// conditional creates (this one answers each transaction after 50ms)
// must still be sent each shared resource once, the first time.
func TestSharedResourcesSentOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	echo := startEcho(t, 50*time.Millisecond)
	rig := newPushRig(t, store.Destination{BaseURL: echo.url, Auth: "none", Concurrency: 8, Rate: 1000,
		Allow: string(kapsync.AllowLoopback)}, noSecrets{}, nil)
	doc := string(homeDosing(t))
	var want []store.Version
	for n := range 8 {
		ep := fmt.Sprintf("ep-90000%d", n)
		d := strings.NewReplacer("ep-700001", ep, "pt-700001", fmt.Sprintf("pt-90000%d", n), "MRN800001", fmt.Sprintf("MRN90000%d", n)).Replace(doc)
		if _, err := rig.intake.Put(ctx, ep, []byte(d)); err != nil {
			t.Fatal(err)
		}
		vs, err := rig.st.EpisodeResources(ctx, ep)
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, vs...)
	}
	rig.start(t)
	waitFor(t, 30*time.Second, "delivered", func() bool { return done(t, rig.st, want) })

	shared := 0
	for url, n := range echo.sent() {
		typ, _, _ := strings.Cut(url, "?")
		if typ == "Organization" || typ == "Practitioner" {
			shared++
			if n != 1 {
				t.Errorf("%s sent %d times, want once", url, n)
			}
		}
	}
	if shared < 3 {
		t.Fatalf("only %d shared resources sent", shared)
	}
}
