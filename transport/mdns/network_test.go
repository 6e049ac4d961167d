package mdns

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// multicastInterface returns the first interface that is up, can
// multicast and has an IPv4 address, or skips the test.
func multicastInterface(t *testing.T) net.Interface {
	t.Helper()
	all, err := net.Interfaces()
	if err != nil {
		t.Skipf("skipping: cannot list interfaces: %v", err)
	}
	for _, ifi := range all {
		if ifi.Flags&net.FlagUp == 0 || ifi.Flags&net.FlagMulticast == 0 || ifi.Flags&net.FlagLoopback != 0 {
			continue
		}
		for _, a := range interfaceAddrs([]net.Interface{ifi}) {
			if a.Is4() {
				return ifi
			}
		}
	}
	t.Skip("skipping: no up, multicast-capable interface with an IPv4 address; mDNS needs one")
	return net.Interface{}
}

// startResponder starts a responder with unique names on ifi, or skips the
// test when the mDNS group cannot be joined.
func startResponder(t *testing.T, ifi net.Interface, cfg Config) *Responder {
	t.Helper()
	cfg.Interfaces = []net.Interface{ifi}
	if cfg.Services == nil {
		cfg.Services = []Service{{Type: "_tally._tcp", Port: 8443, TXT: map[string]string{"fp": "ab12", "api": "/api/v1", "ws": "/ws/device", "v": "1"}}}
	}
	r, err := NewResponder(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := r.Start(ctx); err != nil {
		if errors.Is(err, ErrNoInterfaces) {
			t.Skipf("skipping: cannot join the mDNS group on %s: %v", ifi.Name, err)
		}
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func uniqueNames() (instance, host string) {
	n := rand.Uint32()
	return fmt.Sprintf("Tally test %08x", n), fmt.Sprintf("tally-test-%08x.local.", n)
}

func find(instances []Instance, name string) (Instance, bool) {
	for _, in := range instances {
		if in.Name == name {
			return in, true
		}
	}
	return Instance{}, false
}

func TestResponderAndBrowse(t *testing.T) {
	ifi := multicastInterface(t)
	instance, host := uniqueNames()
	addr := netip.MustParseAddr("192.0.2.123")
	r := startResponder(t, ifi, Config{Instance: instance, Host: host, Addrs: func() []netip.Addr { return []netip.Addr{addr} }})

	b := &Browser{Interfaces: []net.Interface{ifi}}
	found, err := b.Browse(context.Background(), "_tally._tcp", 1500*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	in, ok := find(found, instance)
	if !ok {
		t.Fatalf("Browse found %v, not %q", found, instance)
	}
	if in.Host != host || in.Port != 8443 || in.TXT["fp"] != "ab12" || in.TXT["ws"] != "/ws/device" || len(in.Addrs) != 1 || in.Addrs[0] != addr {
		t.Errorf("found %v TXT %v", in, in.TXT)
	}

	// A second service type at run time, as the HA issue needs.
	if err := r.SetServices([]Service{
		{Type: "_tally._tcp", Port: 8443},
		{Type: "_tally-ha._tcp", Port: 61616},
	}); err != nil {
		t.Fatal(err)
	}
	var ha Instance
	for attempt := 0; attempt < 5 && ha.Port == 0; attempt++ {
		found, err = b.Browse(context.Background(), "_tally-ha._tcp", 1500*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		ha, _ = find(found, instance)
	}
	if ha.Port != 61616 || ha.Host != host {
		t.Errorf("HA service %v, want port 61616 on %s", ha, host)
	}
	if s := r.Stats(); s.Answered == 0 || s.Conflicts != 0 {
		t.Errorf("stats %+v", s)
	}
}

func TestResponderRenamesOnConflict(t *testing.T) {
	ifi := multicastInterface(t)
	instance, host := uniqueNames()
	first := startResponder(t, ifi, Config{Instance: instance, Host: host,
		Addrs: func() []netip.Addr { return []netip.Addr{netip.MustParseAddr("192.0.2.201")} }})
	second := startResponder(t, ifi, Config{Instance: instance, Host: host,
		Services: []Service{{Type: "_tally._tcp", Port: 9443}},
		Addrs:    func() []netip.Addr { return []netip.Addr{netip.MustParseAddr("192.0.2.202")} }})
	if got, gotHost := first.Names(); got != instance || gotHost != host {
		t.Errorf("first responder uses %q on %s, want its own names", got, gotHost)
	}
	gotInstance, gotHost := second.Names()
	if gotInstance != instance+" (2)" {
		t.Errorf("second responder uses instance %q, want %q", gotInstance, instance+" (2)")
	}
	if want := host[:len(host)-len(".local.")] + "-2.local."; gotHost != want {
		t.Errorf("second responder uses host %q, want %q", gotHost, want)
	}
	found, err := (&Browser{Interfaces: []net.Interface{ifi}}).Browse(context.Background(), "_tally._tcp", 1500*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	a, okA := find(found, instance)
	b, okB := find(found, instance+" (2)")
	if !okA || !okB || a.Port != 8443 || b.Port != 9443 {
		t.Errorf("Browse found %v", found)
	}
}

// TestLegacyUnicast asks the way dig does: from an ephemeral port to
// 224.0.0.251:5353, expecting a unicast reply that echoes ID and question.
func TestLegacyUnicast(t *testing.T) {
	ifi := multicastInterface(t)
	instance, host := uniqueNames()
	startResponder(t, ifi, Config{Instance: instance, Host: host})
	c, err := net.ListenUDP("udp4", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	q := query(0x4242, `Tally\ test\ `+instance[len("Tally test "):]+"._tally._tcp.local.", dns.TypeSRV, false)
	b, _ := q.Pack()
	if _, err := c.WriteTo(b, &net.UDPAddr{IP: net.IPv4(224, 0, 0, 251), Port: Port}); err != nil {
		t.Skipf("skipping: cannot send to 224.0.0.251: %v", err)
	}
	buf := make([]byte, 9000)
	for i := 0; i < 10; i++ {
		c.SetReadDeadline(time.Now().Add(3 * time.Second))
		n, _, err := c.ReadFrom(buf)
		if err != nil {
			t.Fatalf("no legacy unicast reply: %v", err)
		}
		m := new(dns.Msg)
		if m.Unpack(buf[:n]) != nil || m.Id != 0x4242 {
			continue
		}
		if len(m.Question) != 1 || m.Question[0] != q.Question[0] || len(m.Answer) != 1 {
			t.Fatalf("reply %v does not echo the question or answer it", m)
		}
		srv, ok := m.Answer[0].(*dns.SRV)
		if !ok || srv.Port != 8443 || srv.Target != host || srv.Hdr.Ttl > legacyTTL || srv.Hdr.Class != dns.ClassINET {
			t.Fatalf("answer %v, want SRV 8443 %s with TTL <= 10 and no cache-flush bit", m.Answer[0], host)
		}
		return
	}
	t.Fatal("no reply with the query's ID")
}
