package discovery

import (
	"net"
	"net/netip"
)

// LimitedBroadcast returns 255.255.255.255, the broadcast of the local
// link.
func LimitedBroadcast() netip.Addr { return netip.AddrFrom4([4]byte{255, 255, 255, 255}) }

// InterfaceAddrs is one network interface as BroadcastAddrs needs it.
type InterfaceAddrs struct {
	Name  string
	Flags net.Flags
	Addrs []net.Addr
}

// LocalInterfaces lists this machine's interfaces and their addresses.
func LocalInterfaces() ([]InterfaceAddrs, error) {
	ifaces, err := net.Interfaces()
	if err != nil {
		return nil, err
	}
	out := make([]InterfaceAddrs, 0, len(ifaces))
	for _, ifc := range ifaces {
		addrs, err := ifc.Addrs()
		if err != nil {
			continue
		}
		out = append(out, InterfaceAddrs{Name: ifc.Name, Flags: ifc.Flags, Addrs: addrs})
	}
	return out, nil
}

// BroadcastAddrs returns 255.255.255.255 followed by the directed broadcast
// address of each IPv4 network of every interface that is up, can
// broadcast and is not a loopback, without repeats. Networks of /31 and
// /32 have no broadcast address and are left out.
func BroadcastAddrs(ifaces []InterfaceAddrs) []netip.Addr {
	out := []netip.Addr{LimitedBroadcast()}
	seen := map[netip.Addr]bool{LimitedBroadcast(): true}
	for _, ifc := range ifaces {
		if ifc.Flags&net.FlagUp == 0 || ifc.Flags&net.FlagBroadcast == 0 || ifc.Flags&net.FlagLoopback != 0 {
			continue
		}
		for _, a := range ifc.Addrs {
			ipnet, ok := a.(*net.IPNet)
			if !ok {
				continue
			}
			ip4 := ipnet.IP.To4()
			ones, bits := ipnet.Mask.Size()
			if ip4 == nil || bits != 32 || ones > 30 || ip4.IsLoopback() {
				continue
			}
			var b [4]byte
			for i := range b {
				b[i] = ip4[i] | ^ipnet.Mask[i]
			}
			if bc := netip.AddrFrom4(b); !seen[bc] {
				seen[bc] = true
				out = append(out, bc)
			}
		}
	}
	return out
}
