package discovery

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestMagicPacket(t *testing.T) {
	mac := net.HardwareAddr{0x00, 0x11, 0x22, 0xaa, 0xbb, 0xcc}
	b := MagicPacket(mac)
	if len(b) != 102 || !bytes.Equal(b[:6], bytes.Repeat([]byte{0xFF}, 6)) || !bytes.Equal(b[6:], bytes.Repeat(mac, 16)) {
		t.Fatalf("magic packet %x", b)
	}
	if MagicPacket(net.HardwareAddr{1, 2, 3}) != nil || MagicPacket(make(net.HardwareAddr, 8)) != nil {
		t.Fatal("magic packet for a MAC that is not 48 bits")
	}
}

func TestWakeSendsToEachTarget(t *testing.T) {
	mac := net.HardwareAddr{0x00, 0x11, 0x22, 0xaa, 0xbb, 0xcc}
	l1, l2 := listen(t, "127.0.0.1:0"), listen(t, "127.0.0.1:0")
	sender := listen(t, "127.0.0.1:0")
	if err := Wake(sender, mac, []netip.AddrPort{addrOf(l1), addrOf(l2)}); err != nil {
		t.Fatal(err)
	}
	for _, l := range []net.PacketConn{l1, l2} {
		if b, _ := readPacket(t, l); !bytes.Equal(b, MagicPacket(mac)) {
			t.Fatalf("received %x", b)
		}
	}
	if err := Wake(sender, net.HardwareAddr{1}, []netip.AddrPort{addrOf(l1)}); !errors.Is(err, ErrBadMAC) {
		t.Fatalf("Wake with a short MAC: %v", err)
	}
}

// writePcap writes one UDP datagram as a classic pcap file with an
// Ethernet link type, so that tshark can dissect it.
func writePcap(path string, src, dst netip.AddrPort, payload []byte) error {
	udp := binary.BigEndian.AppendUint16(nil, src.Port())
	udp = binary.BigEndian.AppendUint16(udp, dst.Port())
	udp = binary.BigEndian.AppendUint16(udp, uint16(8+len(payload)))
	udp = append(udp, 0, 0) // no checksum
	udp = append(udp, payload...)
	ip := []byte{0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, 17, 0, 0}
	binary.BigEndian.PutUint16(ip[2:], uint16(20+len(udp)))
	s, d := src.Addr().As4(), dst.Addr().As4()
	ip = append(append(ip, s[:]...), d[:]...)
	var sum uint32
	for i := 0; i < 20; i += 2 {
		sum += uint32(binary.BigEndian.Uint16(ip[i:]))
	}
	for sum > 0xFFFF {
		sum = sum&0xFFFF + sum>>16
	}
	binary.BigEndian.PutUint16(ip[10:], ^uint16(sum))
	eth := append(bytes.Repeat([]byte{0xFF}, 6), 0x02, 0, 0, 0, 0, 1, 0x08, 0x00)
	frame := append(append(eth, ip...), udp...)

	var f []byte
	f = binary.LittleEndian.AppendUint32(f, 0xa1b2c3d4)
	f = binary.LittleEndian.AppendUint16(f, 2)
	f = binary.LittleEndian.AppendUint16(f, 4)
	f = binary.LittleEndian.AppendUint32(f, 0)     // time zone
	f = binary.LittleEndian.AppendUint32(f, 0)     // accuracy
	f = binary.LittleEndian.AppendUint32(f, 65535) // snap length
	f = binary.LittleEndian.AppendUint32(f, 1)     // Ethernet
	f = binary.LittleEndian.AppendUint32(f, 1767225600)
	f = binary.LittleEndian.AppendUint32(f, 0)
	f = binary.LittleEndian.AppendUint32(f, uint32(len(frame)))
	f = binary.LittleEndian.AppendUint32(f, uint32(len(frame)))
	f = append(f, frame...)
	return os.WriteFile(path, f, 0o644)
}

func TestTsharkDecodesMagicPacket(t *testing.T) {
	tshark, err := exec.LookPath("tshark")
	if err != nil {
		t.Skip("tshark is not installed; the magic packet is checked byte by byte in TestMagicPacket")
	}
	mac := net.HardwareAddr{0x00, 0x11, 0x22, 0xaa, 0xbb, 0xcc}
	// Capture what Wake really sends, then wrap it in a pcap.
	l := listen(t, "127.0.0.1:0")
	sender := listen(t, "127.0.0.1:0")
	if err := Wake(sender, mac, []netip.AddrPort{addrOf(l)}); err != nil {
		t.Fatal(err)
	}
	payload, _ := readPacket(t, l)
	path := filepath.Join(t.TempDir(), "wol.pcap")
	if err := writePcap(path, netip.MustParseAddrPort("10.77.0.1:40000"), netip.MustParseAddrPort("10.77.0.255:9"), payload); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(tshark, "-r", path, "-Y", "wol", "-T", "fields", "-e", "wol.mac").CombinedOutput()
	if err != nil {
		t.Fatalf("tshark: %v\n%s", err, out)
	}
	if got := strings.TrimSpace(string(out)); !strings.Contains(got, mac.String()) {
		t.Fatalf("tshark decoded %q, want %s", got, mac)
	}
}
