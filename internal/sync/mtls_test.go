package sync

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	gosync "sync"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/kapgw/kapgw/internal/fhirpeer"
	"github.com/kapgw/kapgw/internal/secrets"
	"github.com/kapgw/kapgw/internal/store"
)

// testCA is a certificate authority made for one test.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  string
}

func newCA(t testing.TB, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &testCA{cert: cert, key: key, pem: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))}
}

// issue returns a PEM certificate and PKCS #8 key for cn: a server
// certificate for 127.0.0.1, or a client certificate.
func (ca *testCA) issue(t testing.TB, cn string, server bool) (certPEM, keyPEM string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	if server {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	k, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: k}))
}

// mtlsPartner is a partner's HTTPS endpoint on 127.0.0.1 that requires a
// client certificate from clientCA and forwards to the FHIR peer; it
// remembers the common names it accepted.
type mtlsPartner struct {
	base     string
	serverCA *testCA
	mu       gosync.Mutex
	seen     []string
}

func startMTLSPartner(t testing.TB, peerBase string, clientCA *testCA) *mtlsPartner {
	t.Helper()
	target, err := url.Parse(peerBase)
	if err != nil {
		t.Fatal(err)
	}
	p := &mtlsPartner{serverCA: newCA(t, "partner server CA")}
	proxy := &httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) { r.SetURL(&url.URL{Scheme: target.Scheme, Host: target.Host}) }}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		p.seen = append(p.seen, r.TLS.PeerCertificates[0].Subject.CommonName)
		p.mu.Unlock()
		proxy.ServeHTTP(w, r)
	}))
	certPEM, keyPEM := p.serverCA.issue(t, "partner.test", true)
	pair, err := tls.X509KeyPair([]byte(certPEM), []byte(keyPEM))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(clientCA.cert)
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{pair}, ClientAuth: tls.RequireAndVerifyClientCert,
		ClientCAs: pool, MinVersion: tls.VersionTLS12}
	srv.Config.ErrorLog = slog.NewLogLogger(slog.DiscardHandler, slog.LevelError)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	p.base = srv.URL + target.Path
	return p
}

func (p *mtlsPartner) last() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.seen) == 0 {
		return ""
	}
	return p.seen[len(p.seen)-1]
}

// vaultKV returns a resolver reading the shared test Vault's KV with a
// short refresh, and a writer for the secret at path.
func vaultKV(t testing.TB, refresh time.Duration) (Resolver, func(path string, data map[string]any)) {
	t.Helper()
	addr, token := os.Getenv("KAPGW_TEST_VAULT_ADDR"), os.Getenv("KAPGW_TEST_VAULT_TOKEN")
	if addr == "" || token == "" {
		t.Fatal("KAPGW_TEST_VAULT_ADDR and KAPGW_TEST_VAULT_TOKEN must be set; run scripts/test.sh")
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	c, err := secrets.Connect(context.Background(), log, secrets.Config{Addr: addr, Auth: secrets.AuthToken, Token: token,
		Refresh: refresh, MaxStale: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	root, err := api.NewClient(&api.Config{Address: addr})
	if err != nil {
		t.Fatal(err)
	}
	root.SetToken(token)
	put := func(path string, data map[string]any) {
		if _, err := root.KVv2("kv").Put(context.Background(), path, data); err != nil {
			t.Fatalf("put kv/%s: %v", path, err)
		}
	}
	return &secrets.Backend{Source: secrets.NewKV(c, log, time.Now)}, put
}

// txBundle is a one-entry conditional-update transaction.
const txBundle = `{"resourceType":"Bundle","type":"transaction","entry":[{"fullUrl":"urn:uuid:6f1c3b9e-0000-4000-8000-00000000000a",
"resource":{"resourceType":"Patient","identifier":[{"system":"urn:test:mtls","value":"p1"}]},
"request":{"method":"PUT","url":"Patient?identifier=urn:test:mtls|p1"}}]}`

// TestMutualTLS pushes to a partner on 127.0.0.1 that requires a client
// certificate, with the certificate, key and CA bundle in Vault: the right
// certificate is accepted; none, one from another CA, an untrusted server
// and a non-public address under the production dialer are refused.
func TestMutualTLS(t *testing.T) {
	t.Parallel()
	peer := fhirpeer.Start(t)
	clientCA, rogueCA := newCA(t, "partner client CA"), newCA(t, "rogue CA")
	partner := startMTLSPartner(t, peer.Base, clientCA)
	res, put := vaultKV(t, time.Minute)
	path := "kapgw/test/sync-mtls/" + t.Name() + "-" + time.Now().Format("150405.000000")
	goodCert, goodKey := clientCA.issue(t, "kapgw-good", false)
	rogueCert, rogueKey := rogueCA.issue(t, "kapgw-rogue", false)
	put(path, map[string]any{"tls_cert": goodCert, "tls_key": goodKey, "rogue_cert": rogueCert, "rogue_key": rogueKey,
		"ca": partner.serverCA.pem, "other_ca": rogueCA.pem})
	ref := func(field string) string { return "vault:kv/" + path + "#" + field }

	cases := []struct {
		name             string
		auth             string
		cert, key, caRef string
		allow            Allow
		ok               bool
		wantAddress      bool
		wantErrorClass   string
	}{
		{"right certificate", "mtls", ref("tls_cert"), ref("tls_key"), ref("ca"), AllowLoopback, true, false, ""},
		{"no certificate", "none", "", "", ref("ca"), AllowLoopback, false, false, "transport"},
		{"certificate of another CA", "mtls", ref("rogue_cert"), ref("rogue_key"), ref("ca"), AllowLoopback, false, false, "transport"},
		{"server not in the CA bundle", "mtls", ref("tls_cert"), ref("tls_key"), ref("other_ca"), AllowLoopback, false, false, "transport"},
		{"certificate and key of two pairs", "mtls", ref("tls_cert"), ref("rogue_key"), ref("ca"), AllowLoopback, false, false, "credentials"},
		{"loopback under the production dialer", "mtls", ref("tls_cert"), ref("tls_key"), ref("ca"), AllowNone, false, true, "address"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			d := store.Destination{PartnerID: "ehr-1", BaseURL: partner.base, Auth: tc.auth, TLSCertRef: tc.cert,
				TLSKeyRef: tc.key, CARef: tc.caRef, Concurrency: 1, Rate: 100, Allow: string(tc.allow)}
			c, err := newPartnerClient(d, res, time.Now, nil)
			if err != nil {
				t.Fatal(err)
			}
			_, status, err := c.transaction(context.Background(), []byte(txBundle))
			if ok := err == nil && status == http.StatusOK; ok != tc.ok {
				t.Fatalf("transaction: status %d, err %v; want accepted %v", status, err, tc.ok)
			}
			if errors.Is(err, ErrAddress) != tc.wantAddress || errorClass(err) != tc.wantErrorClass {
				t.Errorf("error %v: class %q, want %q (address %v)", err, errorClass(err), tc.wantErrorClass, tc.wantAddress)
			}
		})
	}
}

// TestMutualTLSRotation rotates the client certificate in Vault under a
// running partner client: the next connection presents the new one.
func TestMutualTLSRotation(t *testing.T) {
	t.Parallel()
	peer := fhirpeer.Start(t)
	clientCA, rogueCA := newCA(t, "partner client CA"), newCA(t, "rogue CA")
	partner := startMTLSPartner(t, peer.Base, clientCA)
	const refresh = 200 * time.Millisecond
	res, put := vaultKV(t, refresh)
	path := "kapgw/test/sync-mtls/" + t.Name() + "-" + time.Now().Format("150405.000000")
	ref := func(field string) string { return "vault:kv/" + path + "#" + field }
	d := store.Destination{PartnerID: "ehr-1", BaseURL: partner.base, Auth: "mtls", TLSCertRef: ref("tls_cert"),
		TLSKeyRef: ref("tls_key"), CARef: ref("ca"), Concurrency: 1, Rate: 100, Allow: string(AllowLoopback)}
	c, err := newPartnerClient(d, res, time.Now, nil)
	if err != nil {
		t.Fatal(err)
	}
	send := func() error {
		_, _, err := c.transaction(context.Background(), []byte(txBundle))
		return err
	}
	steps := []struct {
		ca     *testCA
		cn     string
		wantOK bool
	}{
		{rogueCA, "kapgw-2025", false}, // a certificate the partner does not trust
		{clientCA, "kapgw-2026", true}, // rotated to one it does
		{clientCA, "kapgw-2027", true}, // and rotated again
	}
	for _, s := range steps {
		cert, key := s.ca.issue(t, s.cn, false)
		put(path, map[string]any{"tls_cert": cert, "tls_key": key, "ca": partner.serverCA.pem})
		time.Sleep(2 * refresh) // the cached value is older than the refresh interval
		err := send()
		if (err == nil) != s.wantOK {
			t.Fatalf("%s: err %v, want accepted %v", s.cn, err, s.wantOK)
		}
		if s.wantOK && partner.last() != s.cn {
			t.Fatalf("partner saw %q, want %q", partner.last(), s.cn)
		}
	}
}
