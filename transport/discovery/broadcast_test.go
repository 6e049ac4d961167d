package discovery

import (
	"net"
	"net/netip"
	"slices"
	"testing"
)

func TestBroadcastAddrs(t *testing.T) {
	ipnet := func(s string) *net.IPNet {
		ip, n, err := net.ParseCIDR(s)
		if err != nil {
			t.Fatal(err)
		}
		n.IP = ip
		return n
	}
	up := net.FlagUp | net.FlagBroadcast
	got := BroadcastAddrs([]InterfaceAddrs{
		{Name: "lo", Flags: net.FlagUp | net.FlagLoopback, Addrs: []net.Addr{ipnet("127.0.0.1/8")}},
		{Name: "eth0", Flags: up, Addrs: []net.Addr{ipnet("10.77.0.2/24"), ipnet("fe80::1/64"), ipnet("192.168.5.9/22")}},
		{Name: "eth1", Flags: up, Addrs: []net.Addr{ipnet("10.77.0.3/24"), ipnet("172.16.0.1/31"), ipnet("172.16.1.1/32")}},
		{Name: "down", Flags: net.FlagBroadcast, Addrs: []net.Addr{ipnet("10.9.0.1/24")}},
		{Name: "ptp", Flags: net.FlagUp | net.FlagPointToPoint, Addrs: []net.Addr{ipnet("10.8.0.1/24")}},
		{Name: "odd", Flags: up, Addrs: []net.Addr{&net.IPAddr{IP: net.IPv4(10, 1, 1, 1)}}},
	})
	want := []netip.Addr{
		netip.MustParseAddr("255.255.255.255"), netip.MustParseAddr("10.77.0.255"), netip.MustParseAddr("192.168.7.255"),
	}
	if !slices.Equal(got, want) {
		t.Fatalf("BroadcastAddrs = %v, want %v", got, want)
	}
	if got := BroadcastAddrs(nil); !slices.Equal(got, want[:1]) {
		t.Fatalf("no interfaces: %v", got)
	}
	if ts := Targets(want[:2], DefaultPort); ts[1] != netip.MustParseAddrPort("10.77.0.255:30005") {
		t.Fatalf("Targets = %v", ts)
	}
}

func TestLocalInterfaces(t *testing.T) {
	ifaces, err := LocalInterfaces()
	if err != nil {
		t.Fatal(err)
	}
	if got := BroadcastAddrs(ifaces); len(got) == 0 || got[0] != LimitedBroadcast() {
		t.Fatalf("BroadcastAddrs of this machine: %v", got)
	}
}
