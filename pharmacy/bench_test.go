package pharmacy_test

import (
	"context"
	"testing"

	"github.com/kapgw/kapgw/internal/kap"
	"github.com/kapgw/kapgw/internal/kap/kaptest"
	"github.com/kapgw/kapgw/pharmacy/rules"
	"github.com/kapgw/kapgw/pharmacy/script"
	"github.com/kapgw/kapgw/pharmacy/sign"
)

// BenchmarkPrepare measures what the episode transaction does per active
// prescription before queueing: check the rules and build the NewRx.
func BenchmarkPrepare(b *testing.B) {
	ep, issues := kap.Decode(kaptest.Example(kaptest.HomeDosing))
	if issues != nil {
		b.Fatal(issues)
	}
	set, err := rules.For(accepted)
	if err != nil {
		b.Fatal(err)
	}
	env := script.Envelope{From: "org-med-1", MessageID: script.MessageID("NewRx", "ep-700001-rx1", 1), SentTime: accepted}
	b.ReportAllocs()
	for b.Loop() {
		if fs := set.Check(rules.Input{Episode: ep, At: accepted}); len(fs) != 0 {
			b.Fatal(fs)
		}
		if _, err := script.NewRx(ep, 0, env); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSignDev measures signing a NewRx with the development key (a
// Transit signature adds a Vault round trip).
func BenchmarkSignDev(b *testing.B) {
	s := signer(b)
	body, _ := signedNewRx(b, s)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := sign.Sign(context.Background(), s, body); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerify measures what the pharmacy simulator does per message.
func BenchmarkVerify(b *testing.B) {
	s := signer(b)
	body, jws := signedNewRx(b, s)
	keys := sign.KeysOf(s)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := sign.Verify(context.Background(), keys, jws, body); err != nil {
			b.Fatal(err)
		}
	}
}
