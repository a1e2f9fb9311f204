package ratelimit

import (
	"net/netip"
	"strings"
)

// Keys name whose budget a request spends, as "{kind}:{id}". Redis stores
// them under its key prefix ("kapgw:rl:" by default), so a partner's budget
// lives at kapgw:rl:partner:{client id} (redis_rate adds its own fixed "rate:"
// in front). Keys never carry patient data: only partner client ids, which
// come from the partner registry, and network addresses.

// PartnerKey returns the key of a partner's budget on the FHIR API, named by
// the client id of its registry entry.
func PartnerKey(clientID string) string {
	return "partner:" + clientID
}

// IPKey returns the key of a caller's budget on the token endpoint, named by
// its address.
//
// IPv4 addresses (and IPv4-mapped IPv6 ones) are kept whole. IPv6 addresses
// are cut to their /64 network, because a single host usually holds a whole
// /64 and could otherwise dodge the limit by rotating addresses. Addresses
// are not hashed: they are no patient data, the canonical text is already
// short (at most 24 bytes here), and an unsalted hash of the small IPv4 space
// would hide nothing while making Redis harder to inspect.
func IPKey(addr netip.Addr) string {
	addr = addr.Unmap().WithZone("")
	if addr.Is6() {
		p, _ := addr.Prefix(64) // cannot fail for an IPv6 address and 64 bits
		return "ip:" + p.String()
	}
	return "ip:" + addr.String()
}

// keyKind returns the kind part of a key, the only part that logs may show.
func keyKind(key string) string {
	kind, _, ok := strings.Cut(key, ":")
	if !ok {
		return "unknown"
	}
	return kind
}
