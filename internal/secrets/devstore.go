package secrets

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
)

// DevStoreFile is the development store's file name under the data
// directory.
const DevStoreFile = "dev-secrets.json"

// DevStore is the local development secret store used when no Vault is
// configured: one JSON file, mode 0600, under the data directory. Secrets and
// signing keys are generated on first use and kept across restarts. It
// answers both vault: and local: references so configuration does not change
// between development and production. A production profile must refuse it.
type DevStore struct {
	path string

	mu   sync.Mutex
	file devFile
}

// devFile is the on-disk form of the store.
type devFile struct {
	Secrets     map[string]map[string]string `json:"secrets"`      // mount/path -> field -> value
	SigningKeys map[string]string            `json:"signing_keys"` // name -> base64 PKCS #8 P-384 key
}

// OpenDevStore opens or creates the development store in dataDir, generates
// the named signing keys that are missing, and warns loudly that secrets are
// not coming from Vault. It refuses a store file readable by group or others.
func OpenDevStore(ctx context.Context, log *slog.Logger, dataDir string, signingKeys ...string) (*DevStore, error) {
	d := &DevStore{path: filepath.Join(dataDir, DevStoreFile)}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("open dev secret store: %w", err)
	}
	if err := d.load(); err != nil {
		return nil, fmt.Errorf("open dev secret store %s: %w", d.path, err)
	}
	changed := false
	for _, name := range signingKeys {
		if _, ok := d.file.SigningKeys[name]; ok {
			continue
		}
		if err := d.generateKey(name); err != nil {
			return nil, fmt.Errorf("open dev secret store %s: %w", d.path, err)
		}
		changed = true
	}
	if changed {
		if err := d.save(); err != nil {
			return nil, fmt.Errorf("open dev secret store %s: %w", d.path, err)
		}
	}
	log.WarnContext(ctx, "NO VAULT CONFIGURED: using the local development secret store; never use it in production",
		"path", d.path)
	return d, nil
}

// load reads the store file, starting empty when it does not exist yet.
func (d *DevStore) load() error {
	d.file = devFile{Secrets: map[string]map[string]string{}, SigningKeys: map[string]string{}}
	info, err := os.Stat(d.path)
	if errors.Is(err, fs.ErrNotExist) {
		return d.save()
	}
	if err != nil {
		return err
	}
	if info.Mode().Perm()&0o077 != 0 {
		return fmt.Errorf("file mode %v is open to group or others, want 0600", info.Mode().Perm())
	}
	b, err := os.ReadFile(d.path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, &d.file); err != nil {
		return fmt.Errorf("decode: %w", err)
	}
	if d.file.Secrets == nil {
		d.file.Secrets = map[string]map[string]string{}
	}
	if d.file.SigningKeys == nil {
		d.file.SigningKeys = map[string]string{}
	}
	return nil
}

// save writes the store atomically through a 0600 temporary file.
func (d *DevStore) save() error {
	b, err := json.MarshalIndent(d.file, "", "  ")
	if err != nil {
		return fmt.Errorf("encode: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(d.path), ".dev-secrets-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // No-op after the rename.
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), d.path)
}

// Path returns the store file's location, for start-up messages.
func (d *DevStore) Path() string { return d.path }

// Secret returns the field ref points at, generating and saving a random
// 256-bit value (base64url) the first time it is asked for.
func (d *DevStore) Secret(_ context.Context, ref Ref) (string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	key := ref.secretKey()
	if v, ok := d.file.Secrets[key][ref.Field]; ok {
		return v, nil
	}
	buf := make([]byte, 32)
	if _, err := rand.Read(buf); err != nil {
		return "", fmt.Errorf("generate dev secret %s: %w", ref, err)
	}
	if d.file.Secrets[key] == nil {
		d.file.Secrets[key] = map[string]string{}
	}
	v := base64.RawURLEncoding.EncodeToString(buf)
	d.file.Secrets[key][ref.Field] = v
	if err := d.save(); err != nil {
		delete(d.file.Secrets[key], ref.Field)
		return "", fmt.Errorf("save dev secret %s: %w", ref, err)
	}
	return v, nil
}

// Put sets a development secret, for seeding values a developer needs to
// match (a partner sandbox's client secret, for example).
func (d *DevStore) Put(ref Ref, value string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	key := ref.secretKey()
	if d.file.Secrets[key] == nil {
		d.file.Secrets[key] = map[string]string{}
	}
	d.file.Secrets[key][ref.Field] = value
	if err := d.save(); err != nil {
		return fmt.Errorf("save dev secret %s: %w", ref, err)
	}
	return nil
}

// generateKey adds a new P-384 signing key under name.
func (d *DevStore) generateKey(name string) error {
	k, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		return fmt.Errorf("generate signing key %s: %w", name, err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return fmt.Errorf("encode signing key %s: %w", name, err)
	}
	d.file.SigningKeys[name] = base64.StdEncoding.EncodeToString(der)
	return nil
}

// Signer returns an ES384 signer for a signing key named at OpenDevStore.
func (d *DevStore) Signer(name string) (*LocalSigner, error) {
	d.mu.Lock()
	enc, ok := d.file.SigningKeys[name]
	d.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("dev signing key %s: %w", name, ErrNotFound)
	}
	der, err := base64.StdEncoding.DecodeString(enc)
	if err != nil {
		return nil, fmt.Errorf("dev signing key %s: %w", name, err)
	}
	k, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("dev signing key %s: %w", name, err)
	}
	ek, ok := k.(*ecdsa.PrivateKey)
	if !ok || ek.Curve != elliptic.P384() {
		return nil, fmt.Errorf("dev signing key %s: not a P-384 ECDSA key", name)
	}
	return &LocalSigner{name: name, key: ek}, nil
}
