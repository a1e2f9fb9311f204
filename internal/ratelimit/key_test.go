package ratelimit

import (
	"net/netip"
	"testing"
)

func TestKeys(t *testing.T) {
	t.Parallel()
	tests := []struct {
		got, want string
	}{
		{PartnerKey("ehr-acme"), "partner:ehr-acme"},
		{IPKey(netip.MustParseAddr("192.0.2.7")), "ip:192.0.2.7"},
		{IPKey(netip.MustParseAddr("::ffff:192.0.2.7")), "ip:192.0.2.7"},
		{IPKey(netip.MustParseAddr("2001:db8:1:2:3:4:5:6")), "ip:2001:db8:1:2::/64"},
		{IPKey(netip.MustParseAddr("2001:db8:1:2:ffff::1")), "ip:2001:db8:1:2::/64"},
		{IPKey(netip.MustParseAddr("fe80::1%eth0")), "ip:fe80::/64"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("got key %q, want %q", tt.got, tt.want)
		}
	}
}

// ipv4 returns a distinct documentation-range IPv4 address for each i.
func ipv4(i int) netip.Addr {
	return netip.AddrFrom4([4]byte{198, 18, byte(i >> 8), byte(i)})
}
