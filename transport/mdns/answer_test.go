package mdns

import (
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

const (
	testType     = "_tally._tcp.local."
	testInstance = `Tally\ on\ node1._tally._tcp.local.`
	testHost     = "node1.local."
)

var (
	fromMDNS   = netip.MustParseAddrPort("192.0.2.50:5353")
	fromLegacy = netip.MustParseAddrPort("192.0.2.50:40000")
)

func testZone(t testing.TB, addrs ...string) *zone {
	t.Helper()
	if len(addrs) == 0 {
		addrs = []string{"192.0.2.10", "fd00::10"}
	}
	var ips []netip.Addr
	for _, a := range addrs {
		ips = append(ips, netip.MustParseAddr(a))
	}
	z, err := newZone("Tally on node1", "node1.local", []Service{{
		Type: "_tally._tcp", Port: 8443,
		TXT: map[string]string{"fp": "ab12", "api": "/api/v1", "ws": "/ws/device", "v": "1"},
	}}, ips)
	if err != nil {
		t.Fatal(err)
	}
	return z
}

func query(id uint16, name string, qtype uint16, qu bool, known ...dns.RR) *dns.Msg {
	m := new(dns.Msg)
	m.Id = id
	class := uint16(dns.ClassINET)
	if qu {
		class |= unicastResponse
	}
	m.Question = []dns.Question{{Name: name, Qtype: qtype, Qclass: class}}
	m.Answer = known
	return m
}

// summary lists records as "name TYPE" with "!" for the cache-flush bit,
// which is what the tables compare.
func summary(rrs []dns.RR) []string {
	var out []string
	for _, rr := range rrs {
		h := rr.Header()
		s := h.Name + " " + dns.TypeToString[h.Rrtype]
		if h.Class&cacheFlush != 0 {
			s += "!"
		}
		out = append(out, s)
	}
	slices.Sort(out)
	return out
}

func TestRespond(t *testing.T) {
	ptr := &dns.PTR{Hdr: header(testType, dns.TypePTR, otherTTL), Ptr: testInstance}
	tests := []struct {
		name    string
		zone    []string // addresses; empty for both families
		query   *dns.Msg
		src     netip.AddrPort
		recent  bool
		unicast bool
		delay   bool
		answer  []string
		extra   []string
	}{{
		name:   "service PTR brings SRV, TXT and addresses",
		query:  query(7, testType, dns.TypePTR, false),
		src:    fromMDNS,
		delay:  true,
		answer: []string{testType + " PTR"},
		extra:  []string{testHost + " A!", testHost + " AAAA!", testInstance + " SRV!", testInstance + " TXT!"},
	}, {
		name:   "names compare without case",
		query:  query(7, "_TALLY._tcp.LOCAL.", dns.TypePTR, false),
		src:    fromMDNS,
		delay:  true,
		answer: []string{testType + " PTR"},
		extra:  []string{testHost + " A!", testHost + " AAAA!", testInstance + " SRV!", testInstance + " TXT!"},
	}, {
		name:   "enumeration",
		query:  query(7, enumerationName, dns.TypePTR, false),
		src:    fromMDNS,
		delay:  true,
		answer: []string{enumerationName + " PTR"},
	}, {
		name:   "SRV brings addresses",
		query:  query(7, testInstance, dns.TypeSRV, false),
		src:    fromMDNS,
		answer: []string{testInstance + " SRV!"},
		extra:  []string{testHost + " A!", testHost + " AAAA!"},
	}, {
		name:   "TXT alone",
		query:  query(7, strings.ToUpper(testInstance), dns.TypeTXT, false),
		src:    fromMDNS,
		answer: []string{testInstance + " TXT!"},
	}, {
		name:   "A brings AAAA",
		query:  query(7, testHost, dns.TypeA, false),
		src:    fromMDNS,
		answer: []string{testHost + " A!"},
		extra:  []string{testHost + " AAAA!"},
	}, {
		name:   "missing AAAA is answered with NSEC",
		zone:   []string{"192.0.2.10"},
		query:  query(7, testHost, dns.TypeAAAA, false),
		src:    fromMDNS,
		answer: []string{testHost + " NSEC!"},
	}, {
		name:   "SRV of a host without IPv6 brings NSEC",
		zone:   []string{"192.0.2.10"},
		query:  query(7, testInstance, dns.TypeSRV, false),
		src:    fromMDNS,
		answer: []string{testInstance + " SRV!"},
		extra:  []string{testHost + " A!", testHost + " NSEC!"},
	}, {
		name:   "ANY of the instance",
		query:  query(7, testInstance, dns.TypeANY, false),
		src:    fromMDNS,
		answer: []string{testInstance + " SRV!", testInstance + " TXT!"},
		extra:  []string{testHost + " A!", testHost + " AAAA!"},
	}, {
		name:  "unknown name",
		query: query(7, "_ipp._tcp.local.", dns.TypePTR, false),
		src:   fromMDNS,
	}, {
		name:  "unknown type of a name we do not own",
		query: query(7, testType, dns.TypeTXT, false),
		src:   fromMDNS,
	}, {
		name:  "known answer is suppressed",
		query: query(7, testType, dns.TypePTR, false, ptr),
		src:   fromMDNS,
	}, {
		name: "known answer with less than half its TTL is not",
		query: query(7, testType, dns.TypePTR, false,
			&dns.PTR{Hdr: header(testType, dns.TypePTR, otherTTL/2-1), Ptr: testInstance}),
		src:    fromMDNS,
		delay:  true,
		answer: []string{testType + " PTR"},
		extra:  []string{testHost + " A!", testHost + " AAAA!", testInstance + " SRV!", testInstance + " TXT!"},
	}, {
		name:   "QU answered by multicast when not multicast recently",
		query:  query(7, testInstance, dns.TypeSRV, true),
		src:    fromMDNS,
		answer: []string{testInstance + " SRV!"},
		extra:  []string{testHost + " A!", testHost + " AAAA!"},
	}, {
		name:    "QU answered by unicast when multicast recently",
		query:   query(7, testInstance, dns.TypeSRV, true),
		src:     fromMDNS,
		recent:  true,
		unicast: true,
		answer:  []string{testInstance + " SRV!"},
		extra:   []string{testHost + " A!", testHost + " AAAA!"},
	}, {
		name:    "legacy unicast",
		query:   query(0x1234, testType, dns.TypePTR, false),
		src:     fromLegacy,
		unicast: true,
		answer:  []string{testType + " PTR"},
		extra:   []string{testHost + " A", testHost + " AAAA", testInstance + " SRV", testInstance + " TXT"},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			z := testZone(t, tt.zone...)
			replies := z.respond(tt.query, tt.src, func(dns.RR) bool { return tt.recent })
			if len(tt.answer) == 0 {
				if len(replies) != 0 {
					t.Fatalf("got %d replies, want none: %v", len(replies), replies[0].msg)
				}
				return
			}
			if len(replies) != 1 {
				t.Fatalf("got %d replies, want 1", len(replies))
			}
			r := replies[0]
			if r.unicast != tt.unicast || r.delay != tt.delay {
				t.Errorf("unicast, delay = %v, %v; want %v, %v", r.unicast, r.delay, tt.unicast, tt.delay)
			}
			if !r.msg.Response || !r.msg.Authoritative || r.msg.Rcode != dns.RcodeSuccess {
				t.Errorf("header %+v is not an authoritative response", r.msg.MsgHdr)
			}
			slices.Sort(tt.answer)
			slices.Sort(tt.extra)
			if got := summary(r.msg.Answer); !slices.Equal(got, tt.answer) {
				t.Errorf("answer %q, want %q", got, tt.answer)
			}
			if got := summary(r.msg.Extra); !slices.Equal(got, tt.extra) {
				t.Errorf("additional %q, want %q", got, tt.extra)
			}
			if _, err := r.msg.Pack(); err != nil {
				t.Errorf("reply does not pack: %v", err)
			}
		})
	}
}

func TestRespondLegacyUnicastShape(t *testing.T) {
	z := testZone(t)
	q := query(0x1234, testType, dns.TypePTR, false)
	q.RecursionDesired = true
	replies := z.respond(q, fromLegacy, nil)
	if len(replies) != 1 || !replies[0].unicast {
		t.Fatalf("replies %+v, want one unicast", replies)
	}
	m := replies[0].msg
	if m.Id != 0x1234 {
		t.Errorf("ID %#x, want the query's 0x1234", m.Id)
	}
	if len(m.Question) != 1 || m.Question[0] != q.Question[0] {
		t.Errorf("question %v, want the query's %v echoed", m.Question, q.Question)
	}
	for _, rr := range append(slices.Clip(m.Answer), m.Extra...) {
		if rr.Header().Ttl > legacyTTL {
			t.Errorf("%s has TTL %d, want at most %d", rr.Header().Name, rr.Header().Ttl, legacyTTL)
		}
		if srv, ok := rr.(*dns.SRV); ok && (srv.Port != 8443 || srv.Target != testHost) {
			t.Errorf("SRV %v, want port 8443 on %s", srv, testHost)
		}
	}
	if z.records[2].rr.Header().Ttl != hostTTL {
		t.Error("answering changed the zone's own records")
	}
}

func TestRespondMulticastShape(t *testing.T) {
	z := testZone(t)
	replies := z.respond(query(99, testType, dns.TypePTR, false), fromMDNS, nil)
	if len(replies) != 1 {
		t.Fatalf("got %d replies", len(replies))
	}
	m := replies[0].msg
	if m.Id != 0 || len(m.Question) != 0 {
		t.Errorf("multicast reply has ID %d and %d questions, want 0 and none", m.Id, len(m.Question))
	}
}

func TestRespondIgnores(t *testing.T) {
	z := testZone(t)
	response := query(1, testType, dns.TypePTR, false)
	response.Response = true
	update := query(1, testType, dns.TypePTR, false)
	update.Opcode = dns.OpcodeUpdate
	rcode := query(1, testType, dns.TypePTR, false)
	rcode.Rcode = dns.RcodeNameError
	for name, m := range map[string]*dns.Msg{"response": response, "update": update, "rcode": rcode, "no question": new(dns.Msg)} {
		if got := z.respond(m, fromMDNS, nil); len(got) != 0 {
			t.Errorf("%s: got %d replies, want none", name, len(got))
		}
	}
}

func TestConflict(t *testing.T) {
	z := testZone(t)
	other := func(rrs ...dns.RR) *dns.Msg {
		m := new(dns.Msg)
		m.Response = true
		m.Answer = rrs
		return m
	}
	ours := z.announcement(false)
	theirSRV := &dns.SRV{Hdr: header(testInstance, dns.TypeSRV, hostTTL), Port: 9999, Target: "other.local."}
	theirA := &dns.A{Hdr: header("NODE1.local.", dns.TypeA, hostTTL), A: netip.MustParseAddr("192.0.2.99").AsSlice()}
	tests := []struct {
		name           string
		msg            *dns.Msg
		instance, host bool
	}{
		{"our own announcement", ours, false, false},
		{"another SRV for our instance", other(theirSRV), true, false},
		{"another address for our host", other(theirA), false, true},
		{"a goodbye", other(&dns.SRV{Hdr: header(testInstance, dns.TypeSRV, 0), Port: 1, Target: "x.local."}), false, false},
		{"a shared PTR", other(&dns.PTR{Hdr: header(testType, dns.TypePTR, 10), Ptr: "Other._tally._tcp.local."}), false, false},
	}
	for _, tt := range tests {
		instance, host := z.conflict(tt.msg, z.owned, nil)
		if instance != tt.instance || host != tt.host {
			t.Errorf("%s: conflict = %v, %v; want %v, %v", tt.name, instance, host, tt.instance, tt.host)
		}
	}
}

func TestLostTieBreak(t *testing.T) {
	z := testZone(t)
	if z.lostTieBreak(z.probe(z.owned), z.owned) {
		t.Error("our own probe wins the tie-break against us")
	}
	lower, err := newZone("Tally on node1", "node1.local", []Service{{Type: "_tally._tcp", Port: 1}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	higher, err := newZone("Tally on node1", "node1.local", []Service{{Type: "_tally._tcp", Port: 65000}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !lower.lostTieBreak(higher.probe(higher.owned), lower.owned) {
		t.Error("a probe with a greater SRV did not win")
	}
	if higher.lostTieBreak(lower.probe(lower.owned), higher.owned) {
		t.Error("a probe with a lesser SRV won")
	}
}

func TestGoodbye(t *testing.T) {
	z := testZone(t)
	m := z.announcement(true)
	if len(m.Answer) == 0 {
		t.Fatal("empty goodbye")
	}
	for _, rr := range m.Answer {
		if rr.Header().Ttl != 0 || rr.Header().Rrtype == dns.TypeNSEC {
			t.Errorf("goodbye holds %v", rr)
		}
	}
	smaller, err := newZone("Tally on node1", "node1.local", nil, []netip.Addr{netip.MustParseAddr("192.0.2.10")})
	if err != nil {
		t.Fatal(err)
	}
	got := summary(goodbyeFor(z, smaller).Answer)
	want := []string{enumerationName + " PTR", testHost + " AAAA!", testType + " PTR", testInstance + " SRV!", testInstance + " TXT!"}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("goodbye for removed records %q, want %q", got, want)
	}
}

func TestNames(t *testing.T) {
	z, err := newZone(`Tally 1.5 \ test`, "Node1.local.", []Service{{Type: "_tally-ha._tcp.local.", Port: 61616}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := z.recordsOf(`tally\ 1\.5\ \\\ test._tally-ha._tcp.local.`, dns.TypeSRV)
	if len(srv) != 1 {
		t.Fatalf("no SRV for the escaped instance name in %v", z.records)
	}
	if got := firstLabel(srv[0].Header().Name); got != `Tally 1.5 \ test` {
		t.Errorf("first label %q", got)
	}
	for _, bad := range []Config{
		{Instance: "", Host: "a.local."},
		{Instance: strings.Repeat("x", 64), Host: "a.local."},
		{Instance: "x", Host: "a.example.com."},
		{Instance: "x", Host: "a.local.", Services: []Service{{Type: "tally._tcp", Port: 1}}},
		{Instance: "x", Host: "a.local.", Services: []Service{{Type: "_tally._sctp", Port: 1}}},
		{Instance: "x", Host: "a.local.", Services: []Service{{Type: "_tally._tcp", Port: 0}}},
		{Instance: "x", Host: "a.local.", Services: []Service{{Type: "_tally._tcp", Port: 1}, {Type: "_tally._tcp", Port: 2}}},
		{Instance: "x", Host: "a.local.", Services: []Service{{Type: "_tally._tcp", Port: 1, TXT: map[string]string{"a=b": ""}}}},
	} {
		if _, err := NewResponder(bad); err == nil {
			t.Errorf("NewResponder(%+v) accepted", bad)
		}
	}
}

func TestTXTRoundTrip(t *testing.T) {
	z, err := newZone("x", "x.local.", []Service{{Type: "_tally._tcp", Port: 1, TXT: map[string]string{
		"path": `C:\tally "quoted"`, "utf8": "nöde", "empty": "",
	}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := z.announcement(false).Pack()
	if err != nil {
		t.Fatal(err)
	}
	m := new(dns.Msg)
	if err := m.Unpack(b); err != nil {
		t.Fatal(err)
	}
	c := newCollection(testType)
	c.add(m)
	got := c.instances()
	if len(got) != 1 {
		t.Fatalf("instances %v", got)
	}
	want := map[string]string{"path": `C:\tally "quoted"`, "utf8": "nöde", "empty": ""}
	for k, v := range want {
		if got[0].TXT[k] != v {
			t.Errorf("TXT %s = %q, want %q", k, got[0].TXT[k], v)
		}
	}
	if got[0].Name != "x" || got[0].Port != 1 || got[0].Host != "x.local." {
		t.Errorf("instance %v", got[0])
	}
}
