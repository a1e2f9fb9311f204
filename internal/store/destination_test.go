package store

import (
	"context"
	"errors"
	"reflect"
	"testing"
)

// TestDestinationsSQLite and TestDestinationsPostgres run partner
// destinations on both databases.
func TestDestinationsSQLite(t *testing.T) {
	t.Parallel()
	testDestinations(t, openSQLiteTest)
}

func TestDestinationsPostgres(t *testing.T) {
	t.Parallel()
	testDestinations(t, openPostgresTest)
}

// testDestinations stores every field of a destination, replaces it, and
// refuses one for an unregistered partner; the conflict rule defaults to
// resend.
func testDestinations(t *testing.T, open opener) {
	ctx := context.Background()
	s := migrated(t, open, newClock().now)
	if err := s.AddClient(ctx, Client{ID: "ehr-1", Name: "EHR", Kind: "partner", JWKS: []byte(`{"keys":[]}`),
		Scopes: []string{"system/*.rs"}, Orgs: []string{"org-1"}, Rate: 10}); err != nil {
		t.Fatal(err)
	}
	if err := s.PutDestination(ctx, Destination{PartnerID: "nobody", BaseURL: "https://x", Auth: "none"}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("destination of an unregistered partner: %v", err)
	}
	versions := []Destination{
		{PartnerID: "ehr-1", BaseURL: "https://ehr.example/fhir", Auth: "smart", TokenURL: "https://ehr.example/token",
			ClientID: "kapgw", KeyID: "k1", SecretRef: "vault:kv/p/ehr-1#key", Scope: "system/*.write",
			Types: []string{"Patient"}, Concurrency: 2, Rate: 5, Allow: "none", OnConflict: "resend"},
		{PartnerID: "ehr-1", BaseURL: "https://ehr.example/r4", Auth: "mtls", TLSCertRef: "vault:kv/p/ehr-1#tls_cert",
			TLSKeyRef: "vault:kv/p/ehr-1#tls_key", CARef: "vault:kv/p/ehr-1#ca", Types: []string{}, Concurrency: 4,
			Rate: 10, Allow: "loopback", OnConflict: "review", Disabled: true},
	}
	for _, d := range versions {
		if err := s.PutDestination(ctx, d); err != nil {
			t.Fatal(err)
		}
		got, err := s.Destination(ctx, "ehr-1")
		if err != nil {
			t.Fatal(err)
		}
		d.Orgs = []string{"org-1"}
		if !reflect.DeepEqual(got, d) {
			t.Errorf("destination\n got %+v\nwant %+v", got, d)
		}
	}
	if err := s.PutDestination(ctx, Destination{PartnerID: "ehr-1", BaseURL: "https://x", Auth: "none"}); err != nil {
		t.Fatal(err)
	}
	all, err := s.Destinations(ctx)
	if err != nil || len(all) != 1 || all[0].OnConflict != "resend" {
		t.Fatalf("destinations %+v, %v; want one with the rule resend", all, err)
	}
}
