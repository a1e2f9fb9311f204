package main

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/kapgw/kapgw/internal/auth"
	"github.com/kapgw/kapgw/internal/config"
	"github.com/kapgw/kapgw/internal/store"
)

const partnersUsage = `kapgw partners: manage the clients registered for the API

  kapgw partners add --id ID --name NAME --jwks FILE_OR_URL --scope SCOPE [--scope ...]
                     [--org ORG_ID ...] [--rate N/s] [--kind partner|clinic|admin]
  kapgw partners list
  kapgw partners disable --id ID
  kapgw partners enable --id ID
  kapgw partners rotate-key --id ID --jwks FILE_OR_URL
  kapgw partners keygen --kid KID --key-out KEY.pem --jwks-out JWKS.json
  kapgw partners assertion --id ID --key KEY.pem --kid KID --token-url URL

Each takes --data-dir / KAPGW_DATA_DIR and --database-url / KAPGW_DATABASE_URL
like kapgw serve. Changes take effect on running gateways within
--client-cache (2s by default), without a restart. keygen and assertion are
development helpers: they make a P-384 key, its JWK Set, and the signed
client assertion a token request needs.
`

var validClientID = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// listFlag collects a repeatable flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, " ") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

// partnerFlags are every flag of the partners subcommands; each subcommand
// checks the ones it needs.
type partnerFlags struct {
	dataDir, databaseURL                string
	id, name, jwks, kind, rate          string
	scopes, orgs                        listFlag
	kid, keyOut, jwksOut, key, tokenURL string
}

func runPartners(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	sub, args, done, err := subcommand(args, "partners", partnersUsage, stdout)
	if done {
		return err
	}
	var f partnerFlags
	fs := flag.NewFlagSet("partners "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&f.dataDir, "data-dir", or(getenv("KAPGW_DATA_DIR"), "./kapgw-data"), "directory of the embedded SQLite database")
	fs.StringVar(&f.databaseURL, "database-url", getenv("KAPGW_DATABASE_URL"), "PostgreSQL URL; empty uses SQLite under --data-dir")
	fs.StringVar(&f.id, "id", "", "client id")
	fs.StringVar(&f.name, "name", "", "display name")
	fs.StringVar(&f.jwks, "jwks", "", "JWK Set file, or https:// URL of the client's JWKS")
	fs.StringVar(&f.kind, "kind", string(auth.KindPartner), "partner, clinic or admin")
	fs.StringVar(&f.rate, "rate", "", "FHIR API requests per second (N or N/s); empty: the gateway default")
	fs.Var(&f.scopes, "scope", "a scope the client may be granted (repeatable)")
	fs.Var(&f.orgs, "org", "a clinic organization id the partner serves (repeatable)")
	fs.StringVar(&f.kid, "kid", "", "key id")
	fs.StringVar(&f.keyOut, "key-out", "", "where keygen writes the private key (PEM)")
	fs.StringVar(&f.jwksOut, "jwks-out", "", "where keygen writes the public JWK Set")
	fs.StringVar(&f.key, "key", "", "private key file (PEM) that signs the assertion")
	fs.StringVar(&f.tokenURL, "token-url", "", "the gateway's token URL (aud of the assertion)")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: partners %s: %v", errUsage, sub, err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: partners %s: unexpected arguments", errUsage, sub)
	}
	switch sub {
	case "keygen":
		return partnersKeygen(f, stdout)
	case "assertion":
		return partnersAssertion(f, stdout)
	case "add", "list", "disable", "enable", "rotate-key":
		return withRegistry(ctx, f, func(st *store.Store) error { return partnersAdmin(ctx, sub, f, st, stdout) })
	}
	fmt.Fprint(stderr, partnersUsage)
	return fmt.Errorf("%w: unknown partners command %q", errUsage, sub)
}

func or(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

// withRegistry opens and migrates the store the server uses and runs fn.
func withRegistry(ctx context.Context, f partnerFlags, fn func(*store.Store) error) error {
	if f.databaseURL != "" && !config.IsPostgres(f.databaseURL) {
		return fmt.Errorf("%w: --database-url must start with postgres:// or postgresql://", errUsage)
	}
	st, err := store.Open(ctx, store.Config{DataDir: f.dataDir, DatabaseURL: f.databaseURL}, time.Now)
	if err != nil {
		return fmt.Errorf("open store: %w", err)
	}
	defer st.Close()
	if err := st.Migrate(ctx); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	return fn(st)
}

func partnersAdmin(ctx context.Context, sub string, f partnerFlags, st *store.Store, stdout io.Writer) error {
	if sub == "list" {
		return partnersList(ctx, st, stdout)
	}
	if !validClientID.MatchString(f.id) {
		return fmt.Errorf("%w: --id must match [A-Za-z0-9._-]{1,64}", errUsage)
	}
	switch sub {
	case "disable", "enable":
		if err := st.SetClientDisabled(ctx, f.id, sub == "disable"); err != nil {
			return err
		}
	case "rotate-key":
		jwks, jwksURL, err := loadJWKS(f.jwks)
		if err != nil {
			return err
		}
		if err := st.SetClientKeys(ctx, f.id, jwks, jwksURL); err != nil {
			return err
		}
	case "add":
		c, err := newClient(f)
		if err != nil {
			return err
		}
		if err := st.AddClient(ctx, c); err != nil {
			return err
		}
	}
	fmt.Fprintf(stdout, "%s: %s done\n", f.id, sub)
	return nil
}

// newClient checks the flags of partners add.
func newClient(f partnerFlags) (store.Client, error) {
	kind := auth.Kind(f.kind)
	var errs []error
	if strings.TrimSpace(f.name) == "" {
		errs = append(errs, errors.New("--name is required"))
	}
	if kind != auth.KindPartner && kind != auth.KindClinic && kind != auth.KindAdmin {
		errs = append(errs, errors.New("--kind must be partner, clinic or admin"))
	}
	if len(f.scopes) == 0 {
		errs = append(errs, errors.New("at least one --scope is required"))
	}
	for _, s := range f.scopes {
		if !auth.ValidScope(kind, s) {
			errs = append(errs, fmt.Errorf("--scope %q is not a SMART system scope this kind of client may hold", s))
		}
	}
	if kind == auth.KindPartner && len(f.orgs) == 0 {
		errs = append(errs, errors.New("a partner needs at least one --org"))
	}
	rate, err := parseRate(f.rate)
	if err != nil {
		errs = append(errs, err)
	}
	jwks, jwksURL, err := loadJWKS(f.jwks)
	if err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return store.Client{}, fmt.Errorf("%w: %w", errUsage, err)
	}
	return store.Client{ID: f.id, Name: f.name, Kind: string(kind), JWKS: jwks, JWKSURL: jwksURL,
		Scopes: f.scopes, Orgs: f.orgs, Rate: rate}, nil
}

// parseRate reads N or N/s; empty is 0, the gateway's default.
func parseRate(v string) (int, error) {
	if v == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(strings.TrimSuffix(v, "/s"))
	if err != nil || n <= 0 {
		return 0, errors.New("--rate must be a positive number of requests per second, such as 20/s")
	}
	return n, nil
}

// loadJWKS reads a JWK Set file, or takes an https URL to fetch it from at
// token time. A file must hold at least one usable public key and no kid
// twice.
func loadJWKS(v string) ([]byte, string, error) {
	switch {
	case v == "":
		return nil, "", errors.New("--jwks is required")
	case strings.HasPrefix(v, "https://"):
		return nil, v, nil
	case strings.Contains(v, "://"):
		return nil, "", errors.New("--jwks URL must be https")
	}
	b, err := os.ReadFile(v)
	if err != nil {
		return nil, "", fmt.Errorf("--jwks: %w", err)
	}
	keys, err := auth.ParseJWKS(b)
	if err != nil {
		return nil, "", fmt.Errorf("--jwks %s: %w", v, err)
	}
	if len(keys) == 0 {
		return nil, "", fmt.Errorf("--jwks %s: no usable key (RSA >= 2048 bits or P-384, with a kid)", v)
	}
	seen := map[string]bool{}
	for _, k := range keys {
		if seen[k.KeyID] {
			return nil, "", fmt.Errorf("--jwks %s: kid %q names two keys", v, k.KeyID)
		}
		seen[k.KeyID] = true
	}
	return b, "", nil
}

func partnersList(ctx context.Context, st *store.Store, stdout io.Writer) error {
	cs, err := st.Clients(ctx)
	if err != nil {
		return err
	}
	w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "ID\tKIND\tNAME\tSTATUS\tRATE\tKEYS\tSCOPES\tORGS")
	for _, c := range cs {
		status, keys, rate := "active", "inline", "default"
		if c.Disabled {
			status = "disabled"
		}
		if c.JWKSURL != "" {
			keys = c.JWKSURL
		}
		if c.Rate > 0 {
			rate = strconv.Itoa(c.Rate) + "/s"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", c.ID, c.Kind, c.Name, status, rate, keys,
			strings.Join(c.Scopes, " "), strings.Join(c.Orgs, " "))
	}
	return w.Flush()
}

// partnersKeygen writes a new P-384 private key (PKCS #8 PEM, mode 0600) and
// its public JWK Set.
func partnersKeygen(f partnerFlags, stdout io.Writer) error {
	if f.kid == "" || f.keyOut == "" || f.jwksOut == "" {
		return fmt.Errorf("%w: keygen needs --kid, --key-out and --jwks-out", errUsage)
	}
	key, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		return fmt.Errorf("generate key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return fmt.Errorf("encode key: %w", err)
	}
	jwks, err := auth.PublicJWKS(f.kid, key)
	if err != nil {
		return err
	}
	if err := os.WriteFile(f.keyOut, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		return fmt.Errorf("write key: %w", err)
	}
	if err := os.WriteFile(f.jwksOut, append(jwks, '\n'), 0o644); err != nil {
		return fmt.Errorf("write jwks: %w", err)
	}
	fmt.Fprintf(stdout, "wrote %s (private, keep it) and %s (register it with --jwks)\n", f.keyOut, f.jwksOut)
	return nil
}

// partnersAssertion prints a client assertion signed with a PEM key, valid
// for four minutes.
func partnersAssertion(f partnerFlags, stdout io.Writer) error {
	if f.id == "" || f.key == "" || f.kid == "" || f.tokenURL == "" {
		return fmt.Errorf("%w: assertion needs --id, --key, --kid and --token-url", errUsage)
	}
	b, err := os.ReadFile(f.key)
	if err != nil {
		return fmt.Errorf("read key: %w", err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		return errors.New("read key: not PEM")
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return fmt.Errorf("read key: %w", err)
	}
	signer, ok := k.(crypto.Signer)
	if !ok {
		return errors.New("read key: not a signing key")
	}
	a, err := auth.SignAssertion(signer, f.kid, f.id, f.tokenURL, time.Now(), 4*time.Minute)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, a)
	return nil
}
