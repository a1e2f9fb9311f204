package sync

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"syscall"
	"time"
)

// Allow says which non-public addresses a partner connection may reach.
type Allow string

// The Allow values. Production destinations use AllowNone; tests allow
// loopback.
const (
	AllowNone     Allow = "none"
	AllowLoopback Allow = "loopback"
	AllowPrivate  Allow = "private"
)

// ErrAddress reports a destination URL or address the gateway refuses.
var ErrAddress = errors.New("destination address refused")

// CheckURL checks a destination or token URL at registration: https (http
// only when loopback or private addresses are allowed), a host, no user
// info, and every address the host resolves to allowed.
func CheckURL(ctx context.Context, raw string, allow Allow) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.User != nil || u.Fragment != "" {
		return fmt.Errorf("%w: not an absolute URL without credentials", ErrAddress)
	}
	if u.Scheme != "https" && !(u.Scheme == "http" && allow != AllowNone) {
		return fmt.Errorf("%w: scheme must be https", ErrAddress)
	}
	addrs, err := net.DefaultResolver.LookupNetIP(ctx, "ip", u.Hostname())
	if err != nil {
		return fmt.Errorf("%w: resolve host: %v", ErrAddress, err)
	}
	for _, a := range addrs {
		if !allowed(a.Unmap(), allow) {
			return fmt.Errorf("%w: host resolves to a non-public address", ErrAddress)
		}
	}
	return nil
}

// allowed reports whether a connection to a may be made.
func allowed(a netip.Addr, allow Allow) bool {
	switch {
	case a.IsLoopback():
		return allow == AllowLoopback || allow == AllowPrivate
	case a.IsPrivate():
		return allow == AllowPrivate
	case a.IsLinkLocalUnicast(), a.IsLinkLocalMulticast(), a.IsUnspecified(), a.IsMulticast(), a.IsInterfaceLocalMulticast():
		return false
	}
	if !a.IsGlobalUnicast() {
		return false
	}
	for _, p := range nonPublic {
		if p.Contains(a) {
			return false
		}
	}
	return true
}

// nonPublic are special-purpose ranges netip does not classify.
var nonPublic = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),
	netip.MustParsePrefix("100.64.0.0/10"),
	netip.MustParsePrefix("169.254.0.0/16"),
	netip.MustParsePrefix("192.0.0.0/24"),
	netip.MustParsePrefix("192.0.2.0/24"),
	netip.MustParsePrefix("198.18.0.0/15"),
	netip.MustParsePrefix("198.51.100.0/24"),
	netip.MustParsePrefix("203.0.113.0/24"),
	netip.MustParsePrefix("240.0.0.0/4"),
	netip.MustParsePrefix("64:ff9b::/96"),
	netip.MustParsePrefix("100::/64"),
	netip.MustParsePrefix("2001:db8::/32"),
	netip.MustParsePrefix("2002::/16"),
	netip.MustParsePrefix("fc00::/7"),
}

// guardedTransport is an HTTP transport whose every connection, including
// those after redirects, is checked after name resolution, so DNS
// rebinding cannot reach an internal address.
func guardedTransport(allow Allow) *http.Transport {
	d := &net.Dialer{
		Timeout: 10 * time.Second,
		Control: func(_, address string, _ syscall.RawConn) error {
			ap, err := netip.ParseAddrPort(address)
			if err != nil {
				return fmt.Errorf("%w: %s", ErrAddress, address)
			}
			if !allowed(ap.Addr().Unmap(), allow) {
				return fmt.Errorf("%w: non-public address", ErrAddress)
			}
			return nil
		},
	}
	return &http.Transport{
		DialContext:           d.DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConnsPerHost:   16,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: 30 * time.Second,
	}
}
