package auth_test

import (
	"context"
	"crypto"
	"testing"

	"github.com/kapgw/kapgw/internal/store"
)

// BenchmarkPrincipal measures verifying an access token on every API
// request (ES384 signature, claims, cached client lookup disabled: one
// SQLite read per request).
func BenchmarkPrincipal(b *testing.B) {
	e := newEnvTB(b)
	key := ecKey(b)
	e.register(b, store.Client{ID: "ehr", Name: "E", Kind: "partner", Scopes: []string{"system/*.rs"}, Orgs: []string{"o"}}, map[string]crypto.Signer{"k1": key})
	tok, err := e.issuer.Token(context.Background(), form(sign(b, key, "k1", e.claims("ehr")), "system/*.rs"))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e.verifier.Principal(context.Background(), tok.AccessToken); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkToken measures the token endpoint's work: assertion
// verification, the jti insert and signing.
func BenchmarkToken(b *testing.B) {
	e := newEnvTB(b)
	key := ecKey(b)
	e.register(b, store.Client{ID: "ehr", Name: "E", Kind: "partner", Scopes: []string{"system/*.rs"}, Orgs: []string{"o"}}, map[string]crypto.Signer{"k1": key})
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		f := form(sign(b, key, "k1", e.claims("ehr")), "system/*.rs")
		b.StartTimer()
		if _, err := e.issuer.Token(context.Background(), f); err != nil {
			b.Fatal(err)
		}
	}
}
