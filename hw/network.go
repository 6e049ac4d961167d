package hw

import (
	"slices"
	"strings"

	"github.com/jaypipes/ghw"
)

// ethernetAddresses returns the MAC addresses of the physical interfaces
// among nics, ordered by interface name.
//
// ghw marks an interface virtual when its /sys/class/net link points into
// devices/virtual, and reports a MAC only when addr_assign_type is 0
// (permanent). hw also requires the device link that every interface backed
// by hardware has, which catches virtual interfaces in a sysfs copied without
// its links.
func ethernetAddresses(fs sysfs, nics []*ghw.NIC) []string {
	physical := slices.DeleteFunc(slices.Clone(nics), func(n *ghw.NIC) bool {
		return n == nil || n.IsVirtual || !fs.exists("sys", "class", "net", n.Name, "device")
	})
	slices.SortFunc(physical, func(a, b *ghw.NIC) int { return strings.Compare(a.Name, b.Name) })
	macs := make([]string, 0, len(physical))
	for _, n := range physical {
		macs = append(macs, n.MACAddress)
	}
	return macs
}
