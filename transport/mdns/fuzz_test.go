package mdns

import (
	"net/netip"
	"testing"

	"github.com/miekg/dns"
)

// fuzzResponder returns a responder that is publishing testZone and
// probing for a second service, without sockets.
func fuzzResponder(t testing.TB) *Responder {
	r, err := NewResponder(Config{Instance: "Tally on node1", Host: "node1.local."})
	if err != nil {
		t.Fatal(err)
	}
	z, err := newZone("Tally on node1", "node1.local", []Service{{
		Type: "_tally._tcp", Port: 8443,
		TXT: map[string]string{"fp": "ab12", "api": "/api/v1", "ws": "/ws/device", "v": "1"},
	}}, []netip.Addr{netip.MustParseAddr("192.0.2.10"), netip.MustParseAddr("fd00::10")})
	if err != nil {
		t.Fatal(err)
	}
	probing, err := newZone("Tally on node1", "node1.local", []Service{{Type: "_tally-ha._tcp", Port: 61616}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	r.published, r.probing, r.probeNames = z, probing, probing.owned
	return r
}

func FuzzHandle(f *testing.F) {
	seeds := []*dns.Msg{
		query(0, testType, dns.TypePTR, false),
		query(0x1234, testType, dns.TypePTR, false),
		query(0, enumerationName, dns.TypePTR, true),
		query(0, testInstance, dns.TypeANY, false),
		query(0, testHost, dns.TypeAAAA, true),
	}
	z := testZone(f)
	seeds = append(seeds, z.announcement(false), z.announcement(true), z.probe(z.owned))
	for _, m := range seeds {
		b, err := m.Pack()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, uint16(5353))
		f.Add(b, uint16(40000))
	}
	f.Add([]byte{}, uint16(5353))
	f.Add([]byte{0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 12, 0, 12, 0, 1}, uint16(5353))

	f.Fuzz(func(t *testing.T, data []byte, port uint16) {
		r := fuzzResponder(t)
		src := netip.AddrPortFrom(netip.MustParseAddr("192.0.2.50"), port)
		for _, o := range r.replies(packet{data: data, src: src}) {
			m := new(dns.Msg)
			if err := m.Unpack(o.data); err != nil {
				t.Fatalf("reply does not parse: %v", err)
			}
			if !m.Response || len(m.Answer) == 0 {
				t.Fatalf("reply is not a response with answers: %v", m)
			}
			if o.dst != src && o.dst != multicastV4 {
				t.Fatalf("reply goes to %v", o.dst)
			}
			if port != Port && (o.dst != src || len(m.Question) == 0) {
				t.Fatalf("legacy query answered to %v with %d questions", o.dst, len(m.Question))
			}
		}
		s := r.Stats()
		if s.Received != 1 || s.Malformed > 1 {
			t.Fatalf("stats %+v after one packet", s)
		}
	})
}

func TestHandleCountsMalformed(t *testing.T) {
	r := fuzzResponder(t)
	if out := r.replies(packet{data: []byte{1, 2, 3}, src: fromMDNS}); len(out) != 0 {
		t.Fatal("answered garbage")
	}
	if s := r.Stats(); s.Malformed != 1 {
		t.Errorf("stats %+v, want one malformed", s)
	}
}
