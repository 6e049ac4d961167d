package discovery

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"
)

// testNow is the fixed time of tests that do not advance their clock.
var testNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// identity is a licensing ID for tests: an ECDSA P-256 key and its
// self-signed certificate, made as core/licensingid makes one.
type identity struct {
	key  *ecdsa.PrivateKey
	cert []byte
	fp   Fingerprint
}

func newIdentity(t testing.TB) identity {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	name := pkix.Name{CommonName: "Tally licensing ID"}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: name, Issuer: name,
		NotBefore: testNow.Add(-time.Hour), NotAfter: testNow.AddDate(50, 0, 0),
		KeyUsage: x509.KeyUsageDigitalSignature, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return identity{key: key, cert: der, fp: sha256.Sum256(der)}
}

// clock is a settable clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: testNow} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// listen opens a UDP socket on addr ("127.0.0.1:0" and the like), closed
// when the test ends.
func listen(t testing.TB, addr string) *net.UDPConn {
	t.Helper()
	conn, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.MustParseAddrPort(addr)))
	if err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadBuffer(1 << 20)
	t.Cleanup(func() { conn.Close() })
	return conn
}

func addrOf(c net.PacketConn) netip.AddrPort {
	ap, _ := addrPort(c.LocalAddr())
	return ap
}

func testInfo(node, leader string) func() OfferInfo {
	return func() OfferInfo {
		return OfferInfo{
			Endpoints: []Endpoint{
				{NodeID: "node-a", URL: "wss://10.0.0.1:8443/ws/device"},
				{NodeID: "node-b", URL: "wss://10.0.0.2:8443/ws/device"},
				{NodeID: "node-c", URL: "wss://10.0.0.3:8443/ws/device"},
			},
			Cluster: "pune-lab", Leader: leader, NodeID: node,
		}
	}
}

// startResponder runs a Responder on a fresh loopback socket until the
// test ends.
func startResponder(t testing.TB, id identity, cfg Config) *Responder {
	t.Helper()
	if cfg.Conn == nil {
		cfg.Conn = listen(t, "127.0.0.1:0")
	}
	cfg.Signer, cfg.Certificate = id.key, id.cert
	if cfg.Offer == nil {
		cfg.Offer = testInfo("node-a", "node-a")
	}
	if cfg.Now == nil {
		cfg.Now = func() time.Time { return testNow }
	}
	r, err := NewResponder(cfg)
	if err != nil {
		t.Fatal(err)
	}
	serve(t, r.Serve)
	return r
}

// serve runs a Serve method until the test ends and checks that it
// returned nil.
func serve(t testing.TB, run func(context.Context) error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
}

func agentInfo(mac, alias string) func() PresentInfo {
	return func() PresentInfo {
		return PresentInfo{HostIDs: []HostID{{HostIDEthernet, mac}, {HostIDString, "host-" + alias}}, Alias: alias}
	}
}

func startAnswerer(t testing.TB, cfg AnswererConfig) *Answerer {
	t.Helper()
	if cfg.Conn == nil {
		cfg.Conn = listen(t, "127.0.0.1:0")
	}
	if cfg.Now == nil {
		cfg.Now = func() time.Time { return testNow }
	}
	a, err := NewAnswerer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	serve(t, a.Serve)
	return a
}

// waitFor polls cond until it holds. It does not measure time: a slow
// machine only makes it poll longer, and a condition that never holds is
// reported after a bound far beyond any plausible delay.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	for range 120000 {
		if cond() {
			return
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatalf("%s never happened", what)
}

// readPacket reads one datagram from conn; the deadline only keeps a broken
// test from hanging.
func readPacket(t testing.TB, conn net.PacketConn) ([]byte, netip.AddrPort) {
	t.Helper()
	_ = conn.SetReadDeadline(time.Now().Add(2 * time.Minute))
	buf := make([]byte, readBufferSize)
	n, addr, err := conn.ReadFrom(buf)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	ap, _ := addrPort(addr)
	return buf[:n], ap
}

func sendTo(t testing.TB, conn net.PacketConn, b []byte, dst netip.AddrPort) {
	t.Helper()
	if _, err := conn.WriteTo(b, net.UDPAddrFromAddrPort(dst)); err != nil {
		t.Fatalf("send to %s: %v", dst, err)
	}
}

func mustEncode(t testing.TB, p Packet) []byte {
	t.Helper()
	b, err := Encode(p)
	if err != nil {
		t.Fatalf("encode %+v: %v", p, err)
	}
	return b
}

func mustRequest(t testing.TB, p Packet) []byte {
	t.Helper()
	b, err := EncodeRequest(p)
	if err != nil {
		t.Fatalf("encode request %+v: %v", p, err)
	}
	return b
}

func metricsText(t testing.TB, write func(w *strings.Builder) error) string {
	t.Helper()
	var b strings.Builder
	if err := write(&b); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func isErr(err, target error) bool { return errors.Is(err, target) }

func sha(b []byte) Fingerprint { return sha256.Sum256(b) }
