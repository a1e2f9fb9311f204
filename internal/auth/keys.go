package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/kapgw/kapgw/internal/store"
)

const (
	maxJWKSBytes     = 64 << 10
	defaultJWKSCache = 5 * time.Minute
	maxJWKSCache     = 24 * time.Hour
	// minJWKSRefetch is how soon an unknown kid may fetch a JWKS URL again,
	// so a partner can rotate keys without waiting for max-age while an
	// attacker cannot make the gateway fetch on every request.
	minJWKSRefetch = 30 * time.Second
)

// Keys finds the public keys of a registered client: its inline JWK Set, or
// the one at its JWKS URL, fetched with an SSRF-safe client and cached as
// the response's Cache-Control says.
type Keys struct {
	client *http.Client
	now    func() time.Time
	allowL bool

	mu    sync.Mutex
	cache map[string]jwksEntry
}

type jwksEntry struct {
	set     []jose.JSONWebKey
	fetched time.Time
	until   time.Time
}

// KeysOption changes Keys built by NewKeys.
type KeysOption func(*Keys)

// AllowLoopback lets JWKS URLs point at loopback addresses over plain
// HTTP. Only tests use it: a partner's JWKS URL must be public HTTPS.
func AllowLoopback() KeysOption {
	return func(k *Keys) { k.allowL = true }
}

// NewKeys returns Keys that fetch JWKS URLs with a client refusing private,
// loopback, link-local and other non-public addresses (checked on the
// address actually dialled, so DNS rebinding does not get around it).
func NewKeys(now func() time.Time, opts ...KeysOption) *Keys {
	k := &Keys{now: now, cache: map[string]jwksEntry{}}
	for _, o := range opts {
		o(k)
	}
	dialer := &net.Dialer{Timeout: 3 * time.Second, Control: k.checkDial}
	k.client = &http.Client{
		Timeout: 5 * time.Second,
		Transport: &http.Transport{
			Proxy:                 nil,
			DialContext:           dialer.DialContext,
			TLSHandshakeTimeout:   3 * time.Second,
			ResponseHeaderTimeout: 3 * time.Second,
			MaxIdleConns:          10,
			IdleConnTimeout:       90 * time.Second,
		},
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= 3 {
				return errors.New("too many redirects")
			}
			return k.checkURL(req.URL)
		},
	}
	return k
}

// Find returns the keys of c whose kid is kid.
func (k *Keys) Find(ctx context.Context, c store.Client, kid string) ([]jose.JSONWebKey, error) {
	if c.JWKSURL == "" {
		set, err := ParseJWKS(c.JWKS)
		if err != nil {
			return nil, fmt.Errorf("keys of %s: %w", c.ID, err)
		}
		return byKID(set, kid), nil
	}
	set, fresh, err := k.fetch(ctx, c.JWKSURL, false)
	if err != nil {
		return nil, fmt.Errorf("keys of %s: %w", c.ID, err)
	}
	if found := byKID(set, kid); len(found) > 0 || fresh {
		return found, nil
	}
	set, _, err = k.fetch(ctx, c.JWKSURL, true)
	if err != nil {
		return nil, fmt.Errorf("keys of %s: %w", c.ID, err)
	}
	return byKID(set, kid), nil
}

func byKID(set []jose.JSONWebKey, kid string) []jose.JSONWebKey {
	var out []jose.JSONWebKey
	for _, key := range set {
		if key.KeyID == kid {
			out = append(out, key)
		}
	}
	return out
}

// fetch returns the JWKS at u from the cache or the network; fresh tells
// whether it was fetched just now. refetch asks for a new copy when the
// cached one is at least minJWKSRefetch old.
func (k *Keys) fetch(ctx context.Context, u string, refetch bool) ([]jose.JSONWebKey, bool, error) {
	now := k.now()
	k.mu.Lock()
	e, ok := k.cache[u]
	k.mu.Unlock()
	if ok && now.Before(e.until) && (!refetch || now.Sub(e.fetched) < minJWKSRefetch) {
		return e.set, false, nil
	}
	set, maxAge, err := k.get(ctx, u)
	if err != nil {
		return nil, false, err
	}
	k.mu.Lock()
	k.cache[u] = jwksEntry{set: set, fetched: now, until: now.Add(maxAge)}
	k.mu.Unlock()
	return set, true, nil
}

func (k *Keys) get(ctx context.Context, raw string) ([]jose.JSONWebKey, time.Duration, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, 0, errors.New("fetch jwks: invalid URL")
	}
	if err := k.checkURL(u); err != nil {
		return nil, 0, fmt.Errorf("fetch jwks from %s: %w", u.Host, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, 0, fmt.Errorf("fetch jwks from %s: %w", u.Host, err)
	}
	req.Header.Set("Accept", "application/jwk-set+json, application/json")
	resp, err := k.client.Do(req)
	if err != nil {
		return nil, 0, fmt.Errorf("fetch jwks from %s: %w", u.Host, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, 0, fmt.Errorf("fetch jwks GET %s%s: status %d", u.Host, u.Path, resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKSBytes+1))
	if err != nil || len(body) > maxJWKSBytes {
		return nil, 0, fmt.Errorf("fetch jwks from %s: body unreadable or over %d bytes", u.Host, maxJWKSBytes)
	}
	set, err := ParseJWKS(body)
	if err != nil {
		return nil, 0, fmt.Errorf("fetch jwks from %s: %w", u.Host, err)
	}
	return set, cacheFor(resp.Header.Get("Cache-Control")), nil
}

// cacheFor reads max-age from Cache-Control: no-store and no-cache mean no
// caching, no max-age means five minutes, and a day is the most.
func cacheFor(cc string) time.Duration {
	for _, part := range strings.Split(cc, ",") {
		name, val, _ := strings.Cut(strings.TrimSpace(strings.ToLower(part)), "=")
		switch name {
		case "no-store", "no-cache":
			return 0
		case "max-age":
			n, err := strconv.Atoi(strings.Trim(val, `"`))
			if err != nil || n < 0 {
				return 0
			}
			return min(time.Duration(n)*time.Second, maxJWKSCache)
		}
	}
	return defaultJWKSCache
}

// checkURL allows https, and http only to loopback hosts when loopback is
// allowed.
func (k *Keys) checkURL(u *url.URL) error {
	switch {
	case u.Scheme == "https" && u.Host != "":
		return nil
	case u.Scheme == "http" && k.allowL && isLoopbackHost(u.Hostname()):
		return nil
	}
	return errors.New("jwks URL must be https")
}

func isLoopbackHost(h string) bool {
	if h == "localhost" {
		return true
	}
	a, err := netip.ParseAddr(h)
	return err == nil && a.IsLoopback()
}

// checkDial refuses to connect to an address that is not public.
func (k *Keys) checkDial(_, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("dial %s: %w", address, err)
	}
	a := ap.Addr().Unmap()
	if a.IsLoopback() && k.allowL {
		return nil
	}
	if !publicAddr(a) {
		return errors.New("jwks URL resolves to a non-public address")
	}
	return nil
}

// nonPublic are the ranges a JWKS fetch must never reach besides those
// netip classifies: shared address space, benchmarking, documentation,
// 6to4 relays and other special-purpose blocks.
var nonPublic = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),
	netip.MustParsePrefix("100.64.0.0/10"),
	netip.MustParsePrefix("192.0.0.0/24"),
	netip.MustParsePrefix("192.0.2.0/24"),
	netip.MustParsePrefix("198.18.0.0/15"),
	netip.MustParsePrefix("198.51.100.0/24"),
	netip.MustParsePrefix("203.0.113.0/24"),
	netip.MustParsePrefix("240.0.0.0/4"),
	netip.MustParsePrefix("64:ff9b::/96"),
	netip.MustParsePrefix("100::/64"),
	netip.MustParsePrefix("2001::/23"),
	netip.MustParsePrefix("2001:db8::/32"),
	netip.MustParsePrefix("2002::/16"),
}

func publicAddr(a netip.Addr) bool {
	if !a.IsGlobalUnicast() || a.IsPrivate() {
		return false
	}
	for _, p := range nonPublic {
		if p.Contains(a) {
			return false
		}
	}
	return true
}

// ParseJWKS parses a JWK Set and keeps the keys a client assertion may be
// verified with: public RSA keys of at least 2048 bits and P-384 EC keys,
// each with a kid. A private key in the set is refused outright: it should
// never have left the partner.
func ParseJWKS(b []byte) ([]jose.JSONWebKey, error) {
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(b, &set); err != nil {
		return nil, errors.New("parse jwks: not a JWK Set")
	}
	var out []jose.JSONWebKey
	for _, key := range set.Keys {
		if !key.IsPublic() {
			return nil, errors.New("parse jwks: the set holds a private key")
		}
		if key.KeyID == "" || (key.Use != "" && key.Use != "sig") {
			continue
		}
		switch pk := key.Key.(type) {
		case *rsa.PublicKey:
			if pk.N.BitLen() >= 2048 {
				out = append(out, key)
			}
		case *ecdsa.PublicKey:
			if pk.Curve == elliptic.P384() {
				out = append(out, key)
			}
		}
	}
	return out, nil
}
