package discovery

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
)

// WakePort is the UDP port magic packets are sent to.
const WakePort = 9

// MagicPacket returns the Wake-on-LAN magic packet for a 48-bit MAC: six
// 0xFF bytes and then the MAC sixteen times, 102 bytes. It returns nil for
// an address of any other length.
func MagicPacket(mac net.HardwareAddr) []byte {
	if len(mac) != 6 {
		return nil
	}
	b := make([]byte, 0, 6+16*6)
	for range 6 {
		b = append(b, 0xFF)
	}
	for range 16 {
		b = append(b, mac...)
	}
	return b
}

// Wake sends the magic packet for mac from conn to each target, normally
// the broadcast and directed-broadcast addresses of the device's network.
// A target without a port gets WakePort. It returns ErrBadMAC for a MAC
// that is not 48 bits, and the send errors joined when any send failed.
func Wake(conn net.PacketConn, mac net.HardwareAddr, targets []netip.AddrPort) error {
	packet := MagicPacket(mac)
	if packet == nil {
		return fmt.Errorf("%w: %q", ErrBadMAC, mac)
	}
	var errs []error
	for _, t := range targets {
		if t.Port() == 0 {
			t = netip.AddrPortFrom(t.Addr(), WakePort)
		}
		if _, err := conn.WriteTo(packet, net.UDPAddrFromAddrPort(t)); err != nil {
			errs = append(errs, fmt.Errorf("wake %s via %s: %w", mac, t, err))
		}
	}
	return errors.Join(errs...)
}
