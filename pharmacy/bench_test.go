package pharmacy_test

import (
	"context"
	"testing"
	"time"

	"github.com/kapgw/kapgw/internal/intake"
	"github.com/kapgw/kapgw/internal/kap"
	"github.com/kapgw/kapgw/internal/kap/kaptest"
	"github.com/kapgw/kapgw/internal/store"
	"github.com/kapgw/kapgw/mappers"
	"github.com/kapgw/kapgw/pharmacy"
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

// factsLoop is a prescriber hook that, inside the episode's transaction,
// reads what the rules need beyond the document b.N times: the patient's
// prescriptions in other episodes and the partner medications.
type factsLoop struct {
	b  *testing.B
	st *store.Store
}

func (f factsLoop) AfterAccept(ctx context.Context, tx store.Tx, ep *kap.Episode, _ store.ApplyResult) ([]pharmacy.Checked, error) {
	patient := mappers.ID("Patient", ep.Patient.ID)
	f.b.ReportAllocs()
	f.b.ResetTimer()
	for range f.b.N {
		rs, err := f.st.PatientPrescriptionsTx(ctx, tx, patient, ep.ID)
		if err != nil || len(rs) != 2 {
			f.b.Fatalf("other prescriptions: %d, %v", len(rs), err)
		}
		ext, err := f.st.ExternalResourcesTx(ctx, tx, patient, "MedicationStatement", "MedicationRequest")
		if err != nil || len(pharmacy.Medications(ext)) != 1 {
			f.b.Fatalf("partner medications: %d, %v", len(ext), err)
		}
	}
	f.b.StopTimer()
	return nil, nil
}

// BenchmarkPatientFacts measures the reads a document with an active
// prescription adds to its transaction: another episode's prescription and
// one pulled partner medication present.
func BenchmarkPatientFacts(b *testing.B) {
	for _, dialect := range []string{"sqlite", "postgres"} {
		b.Run(dialect, func(b *testing.B) {
			st := openStore(b, dialect)
			ctx := context.Background()
			now := func() time.Time { return accepted }
			if _, err := intake.New(st, now, "").Put(ctx, "ep-700001", kaptest.Example(kaptest.HomeDosing)); err != nil {
				b.Fatal(err)
			}
			patient := mappers.ID("Patient", "pt-700001")
			ms := store.Resource{Type: "MedicationStatement", ID: "ms-1", PatientID: patient, Body: []byte(`{"resourceType":"MedicationStatement","id":"ms-1","status":"active",` +
				`"medicationCodeableConcept":{"coding":[{"system":"http://www.nlm.nih.gov/research/umls/rxnorm","code":"8123"}]},"subject":{"reference":"Patient/` + patient + `"}}`)}
			if _, err := st.StorePulled(ctx, store.PullPage{PartnerID: "ehr-a", PatientID: patient, Type: ms.Type, Resources: []store.Pulled{{Resource: ms, RemoteID: "r1"}}}); err != nil {
				b.Fatal(err)
			}
			in := intake.New(st, now, "").WithPrescriber(factsLoop{b: b, st: st})
			if _, err := in.Put(ctx, "ep-700002", otherEpisode()); err != nil {
				b.Fatal(err)
			}
		})
	}
}
