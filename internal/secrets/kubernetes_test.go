package secrets

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/vault/api"
)

// TestKubernetesLogin logs in through Vault's Kubernetes auth method. The
// Kubernetes TokenReview API is the only third party here, so it is an
// httptest server; Vault itself is real.
func TestKubernetesLogin(t *testing.T) {
	t.Parallel()
	addr, token := testVault(t)
	root := rootClient(t, addr, token)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("generate key: %v", err)
	}
	jwt := serviceAccountJWT(t, key, "kapgw", "kapgw", "uid-1")
	reviewer := httptest.NewServer(tokenReviewHandler(t, jwt, "system:serviceaccount:kapgw:kapgw", "uid-1"))
	t.Cleanup(reviewer.Close)

	mount := "k8s-" + strings.ToLower(rand.Text()[:8])
	if err := root.Sys().EnableAuthWithOptions(mount, &api.EnableAuthOptions{Type: "kubernetes"}); err != nil {
		t.Fatalf("enable kubernetes auth: %v", err)
	}
	der, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		t.Fatalf("marshal public key: %v", err)
	}
	pemKey := string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	writeOrFatal(t, root, "auth/"+mount+"/config", map[string]any{
		"kubernetes_host": reviewer.URL, "pem_keys": []string{pemKey},
		"disable_local_ca_jwt": true, "disable_iss_validation": true,
	})
	writeOrFatal(t, root, "auth/"+mount+"/role/kapgw-gateway", map[string]any{
		"bound_service_account_names": "kapgw", "bound_service_account_namespaces": "kapgw",
		"token_policies": "default", "token_ttl": "5m",
	})
	jwtFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(jwtFile, []byte(jwt), 0o600); err != nil {
		t.Fatalf("write jwt: %v", err)
	}

	c, err := Connect(context.Background(), testLogger(t), Config{
		Addr: addr, Auth: AuthKubernetes, KubernetesMount: mount,
		KubernetesRole: "kapgw-gateway", KubernetesJWTFile: jwtFile,
	})
	if err != nil {
		t.Fatalf("Connect with kubernetes auth: %v", err)
	}
	if _, err := c.api.Auth().Token().LookupSelf(); err != nil {
		t.Fatalf("lookup-self with the kubernetes token: %v", err)
	}
}

// serviceAccountJWT returns an ES256 service account token as Kubernetes
// issues them.
func serviceAccountJWT(tb testing.TB, key *ecdsa.PrivateKey, namespace, name, uid string) string {
	tb.Helper()
	claims, err := json.Marshal(map[string]any{
		"iss":                                    "kubernetes/serviceaccount",
		"sub":                                    "system:serviceaccount:" + namespace + ":" + name,
		"kubernetes.io/serviceaccount/namespace": namespace,
		"kubernetes.io/serviceaccount/service-account.name": name,
		"kubernetes.io/serviceaccount/service-account.uid":  uid,
	})
	if err != nil {
		tb.Fatalf("marshal claims: %v", err)
	}
	enc := base64.RawURLEncoding
	input := enc.EncodeToString([]byte(`{"alg":"ES256","typ":"JWT"}`)) + "." + enc.EncodeToString(claims)
	digest := sha256.Sum256([]byte(input))
	r, s, err := ecdsa.Sign(rand.Reader, key, digest[:])
	if err != nil {
		tb.Fatalf("sign jwt: %v", err)
	}
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	return input + "." + enc.EncodeToString(sig)
}

// tokenReviewHandler answers Kubernetes TokenReview requests for one token.
func tokenReviewHandler(tb testing.TB, jwt, username, uid string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Spec struct {
				Token string `json:"token"`
			} `json:"spec"`
		}
		if r.URL.Path != "/apis/authentication.k8s.io/v1/tokenreviews" || json.NewDecoder(r.Body).Decode(&req) != nil {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		status := map[string]any{"authenticated": false}
		if req.Spec.Token == jwt {
			status = map[string]any{"authenticated": true, "user": map[string]any{"username": username, "uid": uid}}
		}
		w.Header().Set("Content-Type", "application/json")
		if err := json.NewEncoder(w).Encode(map[string]any{
			"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "status": status,
		}); err != nil {
			tb.Errorf("write token review: %v", err)
		}
	}
}

func writeOrFatal(tb testing.TB, c *api.Client, path string, data map[string]any) {
	tb.Helper()
	if _, err := c.Logical().Write(path, data); err != nil {
		tb.Fatalf("write %s: %v", path, err)
	}
}
