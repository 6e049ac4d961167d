package discovery

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

// samplePackets has one packet of every type with every field it may carry.
func samplePackets(t testing.TB, id identity) map[string][]byte {
	t.Helper()
	nonce := Nonce{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}
	offer, err := SignOffer(Packet{Nonce: nonce, Endpoints: testInfo("node-a", "node-b")().Endpoints,
		Cluster: "pune-lab", Leader: "node-b", NodeID: "node-a", Fingerprint: id.fp,
		Certificate: id.cert, Timestamp: testNow}, id.key, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	invite, err := SignInvite(Packet{Nonce: nonce, Endpoints: testInfo("node-a", "node-b")().Endpoints,
		Cluster: "pune-lab", Leader: "node-b", NodeID: "node-a", Fingerprint: id.fp, Certificate: id.cert,
		Timestamp: testNow, Device: HostID{HostIDEthernet, "00:11:22:aa:bb:cc"}, Secret: "K7QX2-M4PRT-9WZHC-3NVBD"}, id.key, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return map[string][]byte{
		"discover":      mustRequest(t, Packet{Type: TypeDiscover, Nonce: nonce, HostIDHint: HostID{HostIDEthernet, "00:11:22:aa:bb:cc"}}),
		"discover-bare": mustEncode(t, Packet{Type: TypeDiscover, Nonce: nonce}),
		"offer":         offer,
		"scan":          mustRequest(t, Packet{Type: TypeScan, Nonce: nonce, ReplyPort: 30005, Fingerprint: id.fp}),
		"present": mustEncode(t, Packet{Type: TypePresent, Nonce: nonce, HostIDs: []HostID{
			{HostIDEthernet, "00:11:22:aa:bb:cc"}, {HostIDUUID, "2f1c0a52-1111-4c4c-9e9e-0123456789ab"}, {HostIDSerial, "SN-1"},
			{HostIDString, "lab-1"}, {HostIDUser, "ann"}}, Alias: "bench 3", Onboarded: true, OnboardedWith: id.fp}),
		"present-new": mustEncode(t, Packet{Type: TypePresent, Nonce: nonce, HostIDs: []HostID{{HostIDEthernet, "00:11:22:aa:bb:cc"}}}),
		"ping":        mustRequest(t, Packet{Type: TypePing, Nonce: nonce}),
		"pong":        mustEncode(t, Packet{Type: TypePong, Nonce: nonce, DeviceID: HostID{HostIDEthernet, "00:11:22:aa:bb:cc"}}),
		"invite":      invite,
	}
}

func TestRoundTrip(t *testing.T) {
	id := newIdentity(t)
	for name, b := range samplePackets(t, id) {
		t.Run(name, func(t *testing.T) {
			if len(b) > MaxPacketSize {
				t.Fatalf("%d bytes", len(b))
			}
			p, err := Decode(b)
			if err != nil {
				t.Fatal(err)
			}
			again, err := Encode(p)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(again, b) {
				t.Fatalf("re-encoding differs:\n%x\n%x", b, again)
			}
		})
	}
}

func TestRoundTripFields(t *testing.T) {
	id := newIdentity(t)
	b := samplePackets(t, id)
	offer, err := Decode(b["offer"])
	if err != nil {
		t.Fatal(err)
	}
	if offer.Type != TypeOffer || offer.NodeID != "node-a" || offer.Leader != "node-b" || offer.Cluster != "pune-lab" ||
		len(offer.Endpoints) != 3 || offer.Endpoints[1] != (Endpoint{"node-b", "wss://10.0.0.2:8443/ws/device"}) ||
		offer.Fingerprint != id.fp || !bytes.Equal(offer.Certificate, id.cert) || !offer.Timestamp.Equal(testNow) {
		t.Fatalf("offer decoded as %+v", offer)
	}
	present, err := Decode(b["present"])
	if err != nil {
		t.Fatal(err)
	}
	if !present.Onboarded || present.OnboardedWith != id.fp || len(present.HostIDs) != 5 || present.Alias != "bench 3" {
		t.Fatalf("present decoded as %+v", present)
	}
	scan, err := Decode(b["scan"])
	if err != nil || scan.ReplyPort != 30005 || scan.Fingerprint != id.fp {
		t.Fatalf("scan decoded as %+v, %v", scan, err)
	}
	for _, name := range []string{"discover", "scan", "ping"} {
		if n := len(b[name]); n < MinRequestSize || n > MinRequestSize+fieldHeaderSize {
			t.Errorf("%s padded to %d bytes, want about %d", name, n, MinRequestSize)
		}
	}
}

// header returns a valid header of type ty.
func header(ty Type) []byte {
	return append([]byte{'T', 'L', 'Y', Version, byte(ty), 0}, make([]byte, 16)...)
}

func field(tag byte, v []byte) []byte {
	return append(binary.BigEndian.AppendUint16([]byte{tag}, uint16(len(v))), v...)
}

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

func TestDecodeRefuses(t *testing.T) {
	id := newIdentity(t)
	good := samplePackets(t, id)
	fp := id.fp[:]
	hid := append([]byte{byte(HostIDEthernet)}, "00:11:22:aa:bb:cc"...)
	withFlags := func(b []byte, f byte) []byte { c := bytes.Clone(b); c[5] = f; return c }
	withVersion := func(b []byte, v byte) []byte { c := bytes.Clone(b); c[3] = v; return c }
	offer := good["offer"]
	cases := []struct {
		name string
		b    []byte
		want error
	}{
		{"empty", nil, ErrMalformed},
		{"short magic", []byte("TL"), ErrMalformed},
		{"wrong magic", cat([]byte("XLY"), header(TypePing)[3:]), ErrMalformed},
		{"version 0", withVersion(good["ping"], 0), ErrVersion},
		{"version 2", withVersion(good["ping"], 2), ErrVersion},
		{"version 2 truncated", []byte{'T', 'L', 'Y', 2}, ErrVersion},
		{"truncated header", header(TypePing)[:21], ErrMalformed},
		{"type 0", header(0), ErrMalformed},
		{"type 8", header(8), ErrMalformed},
		{"reserved flag", withFlags(good["ping"], 0x02), ErrMalformed},
		{"onboarded flag on ping", withFlags(good["ping"], 0x01), ErrMalformed},
		{"oversized", cat(header(TypeDiscover), field(tagPadding, make([]byte, MaxPacketSize-HeaderSize-2))), ErrMalformed},
		{"oversized garbage", bytes.Repeat([]byte{0xFF}, 1500), ErrMalformed},
		{"truncated field header", cat(header(TypeDiscover), []byte{tagPadding, 0}), ErrMalformed},
		{"field past the end", cat(header(TypeDiscover), []byte{tagPadding, 0, 9, 0, 0}), ErrMalformed},
		{"truncated offer", offer[:len(offer)-1], ErrMalformed},
		{"offer cut before signature", offer[:len(offer)-75], ErrMalformed},
		{"unknown field", cat(header(TypePing), field(0x40, []byte{1})), ErrMalformed},
		{"field not for the type", cat(header(TypePing), field(tagAlias, []byte("x"))), ErrMalformed},
		{"duplicate field", cat(header(TypeDiscover), field(tagHostIDHint, hid), field(tagHostIDHint, hid)), ErrMalformed},
		{"out of order", cat(header(TypeScan), field(tagReplyPort, []byte{0x75, 0x35}), field(tagFingerprint, fp)), ErrMalformed},
		{"padding not zero", cat(header(TypePing), field(tagPadding, []byte{0, 1})), ErrMalformed},
		{"empty padding", cat(header(TypePing), field(tagPadding, nil)), ErrMalformed},
		{"scan without reply port", cat(header(TypeScan), field(tagFingerprint, fp)), ErrMalformed},
		{"scan reply port 0", cat(header(TypeScan), field(tagFingerprint, fp), field(tagReplyPort, []byte{0, 0})), ErrMalformed},
		{"scan short fingerprint", cat(header(TypeScan), field(tagFingerprint, fp[:31]), field(tagReplyPort, []byte{1, 0})), ErrMalformed},
		{"scan zero fingerprint", cat(header(TypeScan), field(tagFingerprint, make([]byte, 32)), field(tagReplyPort, []byte{1, 0})), ErrMalformed},
		{"present without hostid", cat(header(TypePresent), field(tagAlias, []byte("a"))), ErrMalformed},
		{"present hostid type 0", cat(header(TypePresent), field(tagHostID, []byte{0, 'a'})), ErrMalformed},
		{"present hostid type 6", cat(header(TypePresent), field(tagHostID, []byte{6, 'a'})), ErrMalformed},
		{"present hostid empty value", cat(header(TypePresent), field(tagHostID, []byte{1})), ErrMalformed},
		{"present hostid control char", cat(header(TypePresent), field(tagHostID, []byte{4, 'a', '\n'})), ErrMalformed},
		{"present hostid bad utf-8", cat(header(TypePresent), field(tagHostID, []byte{4, 0xC3})), ErrMalformed},
		{"present 17 hostids", cat(header(TypePresent), bytes.Repeat(field(tagHostID, hid), 17)), ErrMalformed},
		{"onboarded-with without flag", cat(header(TypePresent), field(tagHostID, hid), field(tagOnboardedWith, fp)), ErrMalformed},
		{"alias too long", cat(header(TypePresent), field(tagHostID, hid), field(tagAlias, bytes.Repeat([]byte("a"), MaxTextLen+1))), ErrMalformed},
		{"pong without device id", header(TypePong), ErrMalformed},
		{"offer without signature", offer[:signatureOffset(t, offer)], ErrMalformed},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Decode(c.b)
			if !errors.Is(err, c.want) {
				t.Fatalf("Decode = %v, want %v", err, c.want)
			}
		})
	}
}

func TestDecodeRefusesBadEndpoints(t *testing.T) {
	id := newIdentity(t)
	ep := func(node, url string) []byte { return append(append([]byte{byte(len(node))}, node...), url...) }
	offerWith := func(eps ...[]byte) []byte {
		parts := [][]byte{header(TypeOffer)}
		for _, e := range eps {
			parts = append(parts, field(tagEndpoint, e))
		}
		parts = append(parts, field(tagNodeID, []byte("a")), field(tagFingerprint, id.fp[:]), field(tagCertificate, id.cert),
			field(tagTimestamp, binary.BigEndian.AppendUint64(nil, uint64(testNow.UnixMilli()))), field(tagSignature, make([]byte, 70)))
		return cat(parts...)
	}
	if _, err := Decode(offerWith(ep("a", "wss://h:1/ws/device"))); err != nil {
		t.Fatalf("the well-formed offer is refused: %v", err)
	}
	for name, b := range map[string][]byte{
		"no endpoint":      offerWith(),
		"http URL":         offerWith(ep("a", "http://h:1/ws/device")),
		"node id too long": offerWith(ep(strings.Repeat("n", MaxNameLen+1), "wss://h:1/")),
		"node id past end": offerWith(append([]byte{200}, "wss://h:1/"...)),
		"empty node id":    offerWith(ep("", "wss://h:1/")),
		"17 endpoints":     offerWith(slices.Repeat([][]byte{ep("a", "wss://h:1/")}, 17)...),
	} {
		if _, err := Decode(b); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: Decode = %v, want ErrMalformed", name, err)
		}
	}
}

func TestEncodeRefuses(t *testing.T) {
	id := newIdentity(t)
	long := strings.Repeat("x", 300)
	cases := []struct {
		name string
		p    Packet
		want error
	}{
		{"unknown type", Packet{Type: 9}, ErrInvalid},
		{"field not for the type", Packet{Type: TypePing, Alias: "x"}, ErrInvalid},
		{"missing required field", Packet{Type: TypeScan, ReplyPort: 1}, ErrInvalid},
		{"name too long", Packet{Type: TypePresent, HostIDs: []HostID{{HostIDString, "a"}}, Alias: long}, ErrInvalid},
		{"too large", Packet{Type: TypePresent, HostIDs: []HostID{{HostIDString, strings.Repeat("v", 128)}, {HostIDString, strings.Repeat("w", 128)},
			{HostIDString, strings.Repeat("x", 128)}, {HostIDString, strings.Repeat("y", 128)}, {HostIDString, strings.Repeat("z", 128)},
			{HostIDString, strings.Repeat("a", 128)}, {HostIDString, strings.Repeat("b", 128)}, {HostIDString, strings.Repeat("c", 128)},
			{HostIDString, strings.Repeat("d", 128)}}}, ErrTooLarge},
		{"padding too large", Packet{Type: TypePing, Padding: 5000}, ErrTooLarge},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if _, err := Encode(c.p); !errors.Is(err, c.want) {
				t.Fatalf("Encode = %v, want %v", err, c.want)
			}
		})
	}
	// An OFFER too large for the packet is refused by SignOffer.
	var eps []Endpoint
	for i := range MaxEndpoints {
		eps = append(eps, Endpoint{NodeID: strings.Repeat("n", 60) + string(rune('a'+i)), URL: "wss://" + strings.Repeat("h", 200)})
	}
	_, err := SignOffer(Packet{Endpoints: eps, NodeID: "a", Fingerprint: id.fp, Certificate: id.cert, Timestamp: testNow}, id.key, rand.Reader)
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("SignOffer of a huge offer = %v, want ErrTooLarge", err)
	}
}

func TestFingerprintText(t *testing.T) {
	id := newIdentity(t)
	s := id.fp.String()
	if len(s) != 95 || strings.ToUpper(s) != s {
		t.Fatalf("fingerprint text %q", s)
	}
	for _, in := range []string{s, strings.ToLower(s), strings.ReplaceAll(s, ":", ""), " " + s + "\n"} {
		f, err := ParseFingerprint(in)
		if err != nil || f != id.fp {
			t.Errorf("ParseFingerprint(%q) = %v, %v", in, f, err)
		}
	}
	for _, in := range []string{"", "AB:CD", s + ":00", "GG" + s[2:]} {
		if _, err := ParseFingerprint(in); !errors.Is(err, ErrFingerprint) {
			t.Errorf("ParseFingerprint(%q) = %v, want ErrFingerprint", in, err)
		}
	}
}

func TestTimestampMilliseconds(t *testing.T) {
	id := newIdentity(t)
	at := testNow.Add(1234567 * time.Microsecond)
	b, err := SignOffer(Packet{Endpoints: []Endpoint{{"a", "wss://h:1/"}}, NodeID: "a", Fingerprint: id.fp, Certificate: id.cert, Timestamp: at}, id.key, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p, err := Decode(b)
	if err != nil || !p.Timestamp.Equal(at.Truncate(time.Millisecond)) {
		t.Fatalf("timestamp %v, %v", p.Timestamp, err)
	}
}

func signatureOffset(t testing.TB, offer []byte) int {
	t.Helper()
	_, off, err := decode(offer)
	if err != nil || off == 0 {
		t.Fatalf("decode offer: %d, %v", off, err)
	}
	return off
}
