package secrets

import (
	"errors"
	"fmt"
	"strings"
)

// Schemes a Ref may use. Configuration names every secret by reference and
// never by value.
const (
	// SchemeVault points at a field of a KV version 2 secret in Vault. The
	// local development store answers the same references, so configuration
	// does not change between development and production.
	SchemeVault = "vault"
	// SchemeLocal points at the local development store only; Vault-backed
	// stores reject it, so a production profile can never depend on it.
	SchemeLocal = "local"
)

// Ref names one field of one secret, written as
// `vault:<mount>/<path>#<field>` (for example
// `vault:kv/kapgw/partners/ehr-1#private_key`) or `local:<mount>/<path>#<field>`.
// The first path segment is the KV version 2 mount.
type Ref struct {
	Scheme string
	Mount  string
	Path   string
	Field  string
}

// ParseRef parses a secret reference. Its errors quote the reference, which
// names a secret but never holds one.
func ParseRef(s string) (Ref, error) {
	scheme, rest, ok := strings.Cut(s, ":")
	if !ok || (scheme != SchemeVault && scheme != SchemeLocal) {
		return Ref{}, fmt.Errorf("parse secret ref %q: want vault:<mount>/<path>#<field> or local:...", s)
	}
	loc, field, ok := strings.Cut(rest, "#")
	if !ok || field == "" || strings.Contains(field, "#") {
		return Ref{}, fmt.Errorf("parse secret ref %q: missing #<field>", s)
	}
	mount, path, ok := strings.Cut(loc, "/")
	if !ok || mount == "" || path == "" {
		return Ref{}, fmt.Errorf("parse secret ref %q: want <mount>/<path>", s)
	}
	if err := checkPath(path); err != nil {
		return Ref{}, fmt.Errorf("parse secret ref %q: %w", s, err)
	}
	return Ref{Scheme: scheme, Mount: mount, Path: path, Field: field}, nil
}

// checkPath rejects paths that would escape the secret's mount or that Vault
// would normalise into another secret.
func checkPath(p string) error {
	for _, seg := range strings.Split(p, "/") {
		switch seg {
		case "":
			return errors.New("empty path segment")
		case ".", "..":
			return errors.New("relative path segment")
		}
	}
	if strings.ContainsAny(p, "?% \t\n") {
		return errors.New("path has reserved characters")
	}
	return nil
}

// String renders the reference in the form ParseRef accepts.
func (r Ref) String() string {
	return r.Scheme + ":" + r.Mount + "/" + r.Path + "#" + r.Field
}

// secretKey identifies the secret (not the field) a reference points at.
func (r Ref) secretKey() string {
	return r.Mount + "/" + r.Path
}
