package discovery

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"
)

// longWait bounds tests that end as soon as the answers they expect have
// come; it is only reached when something is broken.
const longWait = 2 * time.Minute

func discover(t *testing.T, cfg ClientConfig) ([]Offer, error) {
	t.Helper()
	if cfg.Conn == nil {
		cfg.Conn = listen(t, "127.0.0.1:0")
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = longWait
	}
	cfg.Attempts = 1
	if cfg.Now == nil {
		cfg.Now = func() time.Time { return testNow }
	}
	return Discover(context.Background(), cfg)
}

func TestDiscoverOffer(t *testing.T) {
	id := newIdentity(t)
	r := startResponder(t, id, Config{Offer: testInfo("node-b", "node-c")})
	offers, err := discover(t, ClientConfig{Targets: []netip.AddrPort{addrOf(r.cfg.Conn)}, StopAfter: 1,
		PinnedFingerprint: strings.ToLower(id.fp.String()), HostIDHint: HostID{HostIDEthernet, "00:11:22:aa:bb:cc"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(offers) != 1 {
		t.Fatalf("%d offers", len(offers))
	}
	o := offers[0]
	if o.NodeID != "node-b" || o.Leader != "node-c" || o.Cluster != "pune-lab" || o.Fingerprint != id.fp ||
		!bytes.Equal(o.Certificate, id.cert) || o.From != addrOf(r.cfg.Conn) || !o.Timestamp.Equal(testNow) {
		t.Fatalf("offer %+v", o)
	}
	if got := o.URLs()[0]; got != "wss://10.0.0.3:8443/ws/device" {
		t.Fatalf("first URL %s, want the leader's", got)
	}
	// The offer is counted once it has been sent, which may be just after
	// it arrived here.
	waitFor(t, "the offer to be counted", func() bool { return r.counters.sent[TypeOffer].Load() == 1 })
	if r.counters.received[TypeDiscover].Load() != 1 {
		t.Fatalf("counters: %s", metricsText(t, func(w *strings.Builder) error { return r.WriteMetrics(w) }))
	}
}

func TestDiscoverOrdersLeaderFirst(t *testing.T) {
	id := newIdentity(t)
	follower := startResponder(t, id, Config{Offer: testInfo("node-a", "node-b")})
	leader := startResponder(t, id, Config{Offer: testInfo("node-b", "node-b")})
	// Both answer, in either order; the leader's offer comes first.
	offers, err := discover(t, ClientConfig{Targets: []netip.AddrPort{addrOf(follower.cfg.Conn), addrOf(leader.cfg.Conn)}, StopAfter: 2})
	if err != nil {
		t.Fatal(err)
	}
	if len(offers) != 2 || offers[0].NodeID != "node-b" || offers[1].NodeID != "node-a" {
		t.Fatalf("offers %+v", offers)
	}
}

// fakeServer answers the first DISCOVER it gets with the packets
// answers returns for its nonce, in order, from one socket.
func fakeServer(t *testing.T, answers func(nonce Nonce) [][]byte) netip.AddrPort {
	conn := listen(t, "127.0.0.1:0")
	go func() {
		buf := make([]byte, readBufferSize)
		n, from, err := conn.ReadFrom(buf)
		if err != nil {
			return
		}
		p, err := Decode(buf[:n])
		if err != nil {
			t.Errorf("fake server: %v", err)
			return
		}
		for _, b := range answers(p.Nonce) {
			_, _ = conn.WriteTo(b, from)
		}
	}()
	return addrOf(conn)
}

type rejections struct {
	mu   sync.Mutex
	errs []error
}

func (r *rejections) add(_ netip.AddrPort, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errs = append(r.errs, err)
}

func (r *rejections) count(target error) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, e := range r.errs {
		if errors.Is(e, target) {
			n++
		}
	}
	return n
}

func TestForgedOffersRejected(t *testing.T) {
	id, rogue := newIdentity(t), newIdentity(t)
	sign := func(p Packet, by identity) []byte {
		b, err := SignOffer(p, by.key, rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	genuine := func(n Nonce) Packet {
		return Packet{Nonce: n, Endpoints: []Endpoint{{"node-a", "wss://10.0.0.1:8443/ws/device"}}, NodeID: "node-a",
			Fingerprint: id.fp, Certificate: id.cert, Timestamp: testNow}
	}
	server := fakeServer(t, func(n Nonce) [][]byte {
		badSig := sign(genuine(n), id)
		badSig[len(badSig)-3] ^= 1
		replayed := sign(genuine(Nonce{0xAA}), id) // an OFFER captured from another exchange
		stale := genuine(n)
		stale.Timestamp = testNow.Add(-time.Hour)
		swapped := genuine(n) // the real fingerprint, the rogue's certificate and key
		swapped.Certificate = rogue.cert
		impostor := genuine(n) // the rogue's own identity
		impostor.NodeID, impostor.Certificate, impostor.Fingerprint = "rogue", rogue.cert, rogue.fp
		return [][]byte{badSig, replayed, sign(stale, id), sign(swapped, rogue), sign(impostor, rogue), []byte("junk"), sign(genuine(n), id)}
	})
	var rej rejections
	offers, err := discover(t, ClientConfig{Targets: []netip.AddrPort{server}, StopAfter: 7, PinnedFingerprint: id.fp.String(), OnReject: rej.add})
	if err != nil {
		t.Fatal(err)
	}
	if len(offers) != 1 || offers[0].Fingerprint != id.fp || offers[0].NodeID != "node-a" {
		t.Fatalf("offers %+v", offers)
	}
	for target, want := range map[error]int{ErrBadSignature: 1, ErrNonce: 1, ErrStale: 1, ErrFingerprint: 2, ErrMalformed: 1} {
		if got := rej.count(target); got != want {
			t.Errorf("%d rejections with %v, want %d (all: %v)", got, target, want, rej.errs)
		}
	}
}

func TestOnlyForgedOffersIsNoOffer(t *testing.T) {
	id := newIdentity(t)
	server := fakeServer(t, func(n Nonce) [][]byte {
		b, err := SignOffer(Packet{Nonce: n, Endpoints: []Endpoint{{"a", "wss://h:1/"}}, NodeID: "a", Fingerprint: id.fp,
			Certificate: id.cert, Timestamp: testNow}, id.key, rand.Reader)
		if err != nil {
			t.Error(err)
		}
		b[len(b)-1] ^= 1
		return [][]byte{b}
	})
	_, err := discover(t, ClientConfig{Targets: []netip.AddrPort{server}, StopAfter: 1})
	if !errors.Is(err, ErrNoOffer) || !errors.Is(err, ErrBadSignature) {
		t.Fatalf("Discover = %v, want ErrNoOffer wrapping ErrBadSignature", err)
	}
}

func TestRogueServerRejectedWhenPinned(t *testing.T) {
	id, rogueID := newIdentity(t), newIdentity(t)
	real := startResponder(t, id, Config{Offer: testInfo("node-a", "node-a")})
	rogue := startResponder(t, rogueID, Config{Offer: testInfo("evil", "evil")})
	targets := []netip.AddrPort{addrOf(rogue.cfg.Conn), addrOf(real.cfg.Conn)}

	var rej rejections
	offers, err := discover(t, ClientConfig{Targets: targets, StopAfter: 2, PinnedFingerprint: id.fp.String(), OnReject: rej.add})
	if err != nil {
		t.Fatal(err)
	}
	if len(offers) != 1 || offers[0].NodeID != "node-a" || rej.count(ErrFingerprint) != 1 {
		t.Fatalf("pinned: offers %+v, rejections %v", offers, rej.errs)
	}
	// Unpinned, a device on first use sees both and must choose; the pin is
	// what keeps the rogue out.
	offers, err = discover(t, ClientConfig{Targets: targets, StopAfter: 2})
	if err != nil || len(offers) != 2 {
		t.Fatalf("unpinned: %d offers, %v", len(offers), err)
	}
}

func TestScanPresent(t *testing.T) {
	id := newIdentity(t)
	r := startResponder(t, id, Config{})
	a1 := startAnswerer(t, AnswererConfig{Present: agentInfo("00:11:22:00:00:01", "one")})
	a2 := startAnswerer(t, AnswererConfig{Present: func() PresentInfo {
		return PresentInfo{HostIDs: []HostID{{HostIDEthernet, "00:11:22:00:00:02"}}, Alias: "two", Onboarded: true, OnboardedWith: id.fp}
	}})
	found := make(chan Found, 16)
	// a1 is asked twice; it answers twice and is listed once.
	targets := []netip.AddrPort{addrOf(a1.cfg.Conn), addrOf(a2.cfg.Conn), addrOf(a1.cfg.Conn)}
	job, err := r.Scan(context.Background(), ScanOptions{Targets: targets, Timeout: longWait, OnFound: func(f Found) { found <- f }})
	if err != nil {
		t.Fatal(err)
	}
	byAlias := map[string]Found{}
	for range 2 {
		f := <-found
		byAlias[f.Alias] = f
	}
	waitFor(t, "the second answer of a1", func() bool { return r.counters.received[TypePresent].Load() == 3 })
	job.Cancel()
	<-job.Done()

	one, two := byAlias["one"], byAlias["two"]
	if one.DeviceID() != (HostID{HostIDEthernet, "00:11:22:00:00:01"}) || len(one.HostIDs) != 2 || one.Onboarded || one.Here {
		t.Errorf("one: %+v", one)
	}
	if !two.Onboarded || !two.Here || two.OnboardedWith != id.fp || two.From != addrOf(a2.cfg.Conn) {
		t.Errorf("two: %+v", two)
	}
	p := job.Progress()
	if !p.Done || p.Targets != 3 || p.Sent != 3 || p.Failed != 0 || p.Answered != 2 || p.Timeout != longWait || len(job.Results()) != 2 {
		t.Errorf("progress %+v, %d results", p, len(job.Results()))
	}
	waitFor(t, "a1 to count its two PRESENTs", func() bool { return a1.counters.sent[TypePresent].Load() == 2 })
	// Answers after the scan are unexpected.
	if r.counters.dropped[dropUnexpected].Load() != 0 {
		t.Errorf("unexpected drops during the scan")
	}
}

func TestScanDefaultsAndLimits(t *testing.T) {
	id := newIdentity(t)
	r := startResponder(t, id, Config{})
	if _, err := r.Scan(context.Background(), ScanOptions{}); !errors.Is(err, ErrConfig) {
		t.Fatalf("scan without targets: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	job, err := r.Scan(ctx, ScanOptions{Targets: []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:9")}})
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	<-job.Done()
	if p := job.Progress(); p.Timeout != DefaultScanTimeout || !p.Done {
		t.Fatalf("progress %+v", p)
	}
}

func TestPingPong(t *testing.T) {
	id := newIdentity(t)
	r := startResponder(t, id, Config{})
	a := startAnswerer(t, AnswererConfig{Present: agentInfo("00:11:22:00:00:01", "one")})
	online := addrOf(a.cfg.Conn)
	got, err := r.Ping(context.Background(), []netip.AddrPort{online}, longWait)
	if err != nil {
		t.Fatal(err)
	}
	if p := got[online]; !p.Online || p.DeviceID != (HostID{HostIDEthernet, "00:11:22:00:00:01"}) || p.From != online {
		t.Fatalf("ping %+v", got)
	}
	// A socket that never answers is offline when the wait ends.
	silent := addrOf(listen(t, "127.0.0.1:0"))
	got, err = r.Ping(context.Background(), []netip.AddrPort{silent}, 50*time.Millisecond)
	if err != nil || len(got) != 1 || got[silent].Online {
		t.Fatalf("silent: %+v, %v", got, err)
	}
}

func TestRateLimitPerSource(t *testing.T) {
	id := newIdentity(t)
	clk := newClock()
	r := startResponder(t, id, Config{Now: clk.Now, Limits: Limits{RatePerSource: 1, Burst: 5}})
	server := addrOf(r.cfg.Conn)
	flooder := listen(t, "127.0.0.2:0")
	request := mustRequest(t, Packet{Type: TypeDiscover, Nonce: Nonce{1}})
	const flood = 40
	for range flood {
		sendTo(t, flooder, request, server)
	}
	waitFor(t, "the flood to be answered or dropped", func() bool {
		return r.counters.sent[TypeOffer].Load()+r.counters.dropped[dropRateLimited].Load() == flood
	})
	if got := r.counters.sent[TypeOffer].Load(); got != 5 {
		t.Fatalf("%d offers to the flooder, want the burst of 5", got)
	}
	if got := r.counters.dropped[dropRateLimited].Load(); got != flood-5 {
		t.Fatalf("%d rate-limited, want %d", got, flood-5)
	}
	// Another source is still answered.
	offers, err := discover(t, ClientConfig{Conn: listen(t, "127.0.0.3:0"), Targets: []netip.AddrPort{server}, StopAfter: 1})
	if err != nil || len(offers) != 1 {
		t.Fatalf("other source: %d offers, %v", len(offers), err)
	}
	// After a second the flooder has earned one more.
	clk.Advance(time.Second)
	sendTo(t, flooder, request, server)
	sendTo(t, flooder, request, server)
	waitFor(t, "two more requests", func() bool {
		return r.counters.sent[TypeOffer].Load()+r.counters.dropped[dropRateLimited].Load() == flood+3
	})
	if got := r.counters.sent[TypeOffer].Load(); got != 7 {
		t.Fatalf("%d offers, want 7", got)
	}
}

func TestLimiterTableIsBounded(t *testing.T) {
	clk := newClock()
	l := newLimiter(Limits{RatePerSource: 1, Burst: 2, MaxSources: 3, RateTotal: 1000}, clk.Now)
	ip := func(i byte) netip.Addr { return netip.AddrFrom4([4]byte{10, 0, 0, i}) }
	for i := range byte(3) {
		if !l.allow(ip(i)) {
			t.Fatalf("source %d refused", i)
		}
	}
	if l.allow(ip(9)) {
		t.Fatal("a fourth source was tracked while the others are active")
	}
	clk.Advance(2 * time.Second) // every bucket is full again and can go
	if !l.allow(ip(9)) || l.size() != 1 {
		t.Fatalf("after pruning: allowed=false or %d sources", l.size())
	}
	// The total bucket limits all sources together.
	total := newLimiter(Limits{RatePerSource: 100, Burst: 100, RateTotal: 3}, clk.Now)
	n := 0
	for i := range byte(10) {
		if total.allow(ip(i)) {
			n++
		}
	}
	if n != 3 {
		t.Fatalf("%d allowed under a total of 3", n)
	}
}

func TestBadPacketsDroppedAndCounted(t *testing.T) {
	id := newIdentity(t)
	r := startResponder(t, id, Config{})
	server := addrOf(r.cfg.Conn)
	c := listen(t, "127.0.0.1:0")
	good := mustRequest(t, Packet{Type: TypeDiscover, Nonce: Nonce{7}})
	oversized := append(bytes.Clone(good), make([]byte, MaxPacketSize)...)
	wrongVersion := bytes.Clone(good)
	wrongVersion[3] = 2
	offer, err := SignOffer(Packet{Nonce: Nonce{7}, Endpoints: []Endpoint{{"a", "wss://h:1/"}}, NodeID: "a", Fingerprint: id.fp,
		Certificate: id.cert, Timestamp: testNow}, id.key, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range [][]byte{
		oversized, good[:10], good[:HeaderSize+2], wrongVersion, []byte("GET / HTTP/1.1\r\n\r\n"),
		offer, // a server takes no OFFER
		mustEncode(t, Packet{Type: TypePresent, Nonce: Nonce{1}, HostIDs: []HostID{{HostIDString, "x"}}}), // nobody scans
		mustEncode(t, Packet{Type: TypeDiscover, Nonce: Nonce{8}}),                                        // too small for the OFFER
		bytes.Repeat([]byte{0xFF}, 65000),
	} {
		sendTo(t, c, b, server)
	}
	sendTo(t, c, good, server)
	b, _ := readPacket(t, c) // the only answer: to the good DISCOVER
	if o, err := VerifyOffer(b, VerifyPolicy{Nonce: Nonce{7}, Now: testNow, MaxSkew: time.Minute}); err != nil || o.NodeID != "node-a" {
		t.Fatalf("answer to the good request: %v", err)
	}
	waitFor(t, "the offer to be counted", func() bool { return r.counters.sent[TypeOffer].Load() == 1 })
	want := map[dropReason]uint64{dropMalformed: 5, dropVersion: 1, dropUnexpected: 2, dropAmplification: 1}
	for reason, n := range want {
		if got := r.counters.dropped[reason].Load(); got != n {
			t.Errorf("dropped %s = %d, want %d", dropReasonNames[reason], got, n)
		}
	}
	m := metricsText(t, func(w *strings.Builder) error { return r.WriteMetrics(w) })
	for _, line := range []string{
		`tally_discovery_dropped_total{role="server",reason="malformed"} 5`,
		`tally_discovery_dropped_total{role="server",reason="version"} 1`,
		`tally_discovery_dropped_total{role="server",reason="amplification"} 1`,
		`tally_discovery_received_total{role="server",type="discover"} 2`,
		`tally_discovery_sent_total{role="server",type="offer"} 1`,
		"# TYPE tally_discovery_dropped_total counter",
	} {
		if !strings.Contains(m, line+"\n") {
			t.Errorf("metrics lack %q:\n%s", line, m)
		}
	}
}

func TestAmplificationRule(t *testing.T) {
	id := newIdentity(t)
	r := startResponder(t, id, Config{})
	server := addrOf(r.cfg.Conn)
	c := listen(t, "127.0.0.1:0")
	// Find the size of the OFFER, then ask with requests just below and at
	// a third of it.
	sendTo(t, c, mustRequest(t, Packet{Type: TypeDiscover, Nonce: Nonce{1}}), server)
	offer, _ := readPacket(t, c)
	if len(offer) > MaxPacketSize || len(offer) < 3*HeaderSize {
		t.Fatalf("offer of %d bytes", len(offer))
	}
	// The signature is 70 to 72 bytes, so a request of a third of the
	// largest possible offer is always answered and one a third of the
	// smallest, less one, never is.
	lo, hi := (len(offer)-2)/AmplificationFactor-1, (len(offer)+2+AmplificationFactor-1)/AmplificationFactor
	request := func(size int) []byte {
		b := mustEncode(t, Packet{Type: TypeDiscover, Nonce: Nonce{2}})
		return mustEncode(t, Packet{Type: TypeDiscover, Nonce: Nonce{2}, Padding: size - len(b) - fieldHeaderSize})
	}
	sendTo(t, c, request(lo), server)
	sendTo(t, c, request(hi), server)
	b, _ := readPacket(t, c)
	if p, err := Decode(b); err != nil || p.Nonce != (Nonce{2}) || len(b) > AmplificationFactor*hi {
		t.Fatalf("answer %v, %d bytes to a request of %d", err, len(b), hi)
	}
	waitFor(t, "the offer to be counted", func() bool { return r.counters.sent[TypeOffer].Load() == 2 })
	if r.counters.dropped[dropAmplification].Load() != 1 {
		t.Fatalf("amplification drops %d, offers %d", r.counters.dropped[dropAmplification].Load(), r.counters.sent[TypeOffer].Load())
	}
	// Nothing is sent to a privileged port, however large the request.
	priv, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 5), Port: 999})
	if err != nil {
		t.Logf("no privileged port to test from: %v", err)
		return
	}
	defer priv.Close()
	sendTo(t, priv, mustRequest(t, Packet{Type: TypeDiscover, Nonce: Nonce{3}}), server)
	// The drop is counted after the arrival: wait for it, not for the
	// arrival, then check that no offer went out.
	waitFor(t, "the request from port 999 to be dropped", func() bool {
		return r.counters.dropped[dropAmplification].Load() == 2 || r.counters.sent[TypeOffer].Load() > 2
	})
	if r.counters.sent[TypeOffer].Load() != 2 || r.counters.dropped[dropAmplification].Load() != 2 {
		t.Fatal("answered a privileged port")
	}
}

func TestAnswererRefuses(t *testing.T) {
	a := startAnswerer(t, AnswererConfig{Present: func() PresentInfo {
		ids := []HostID{}
		for _, v := range []string{"a", "b", "c", "d", "e", "f"} {
			ids = append(ids, HostID{HostIDString, strings.Repeat(v, 120)})
		}
		return PresentInfo{HostIDs: ids}
	}})
	agent := addrOf(a.cfg.Conn)
	c := listen(t, "127.0.0.1:0")
	fp := Fingerprint{1}
	// An unpadded SCAN would draw a PRESENT of ~750 bytes: refused.
	sendTo(t, c, mustEncode(t, Packet{Type: TypeScan, Nonce: Nonce{1}, ReplyPort: addrOf(c).Port(), Fingerprint: fp}), agent)
	// A SCAN naming a privileged reply port: refused.
	sendTo(t, c, mustRequest(t, Packet{Type: TypeScan, Nonce: Nonce{2}, ReplyPort: 53, Fingerprint: fp}), agent)
	// A DISCOVER is not for an agent.
	sendTo(t, c, mustRequest(t, Packet{Type: TypeDiscover, Nonce: Nonce{3}}), agent)
	sendTo(t, c, mustRequest(t, Packet{Type: TypeScan, Nonce: Nonce{4}, ReplyPort: addrOf(c).Port(), Fingerprint: fp}), agent)
	b, _ := readPacket(t, c)
	p, err := Decode(b)
	if err != nil || p.Type != TypePresent || p.Nonce != (Nonce{4}) || len(p.HostIDs) != 6 {
		t.Fatalf("answer %+v, %v", p, err)
	}
	if a.counters.dropped[dropAmplification].Load() != 2 || a.counters.dropped[dropUnexpected].Load() != 1 {
		t.Fatalf("metrics:\n%s", metricsText(t, func(w *strings.Builder) error { return a.WriteMetrics(w) }))
	}
}

func TestConfigRefused(t *testing.T) {
	id, other := newIdentity(t), newIdentity(t)
	conn := listen(t, "127.0.0.1:0")
	info := testInfo("a", "a")
	for name, cfg := range map[string]Config{
		"no conn":          {Signer: id.key, Certificate: id.cert, Offer: info},
		"no signer":        {Conn: conn, Certificate: id.cert, Offer: info},
		"no offer":         {Conn: conn, Signer: id.key, Certificate: id.cert},
		"bad certificate":  {Conn: conn, Signer: id.key, Certificate: []byte("x"), Offer: info},
		"another's certif": {Conn: conn, Signer: id.key, Certificate: other.cert, Offer: info},
	} {
		if _, err := NewResponder(cfg); !errors.Is(err, ErrConfig) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := NewAnswerer(AnswererConfig{Conn: conn}); !errors.Is(err, ErrConfig) {
		t.Errorf("answerer without Present: %v", err)
	}
	if _, err := Discover(context.Background(), ClientConfig{Conn: conn}); !errors.Is(err, ErrConfig) {
		t.Errorf("discover without targets: %v", err)
	}
	if _, err := Discover(context.Background(), ClientConfig{Conn: conn, Targets: []netip.AddrPort{addrOf(conn)}, PinnedFingerprint: "zz"}); !errors.Is(err, ErrFingerprint) {
		t.Errorf("discover with a bad pin: %v", err)
	}
}

func TestServeStopsAndLeavesConnUsable(t *testing.T) {
	id := newIdentity(t)
	conn := listen(t, "127.0.0.1:0")
	r, err := NewResponder(Config{Conn: conn, Signer: id.key, Certificate: id.cert, Offer: testInfo("a", "a")})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Serve(ctx) }()
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Serve = %v", err)
	}
	// A second Serve on the same socket works.
	serve(t, r.Serve)
	offers, err := discover(t, ClientConfig{Targets: []netip.AddrPort{addrOf(conn)}, StopAfter: 1, Now: time.Now})
	if err != nil || len(offers) != 1 {
		t.Fatalf("after restart: %v", err)
	}
}
