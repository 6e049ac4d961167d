package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"encoding/json"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tallyhq/tally/transport/device"
	"github.com/tallyhq/tally/transport/device/devicetest"
	"github.com/tallyhq/tally/transport/discovery"
	"github.com/tallyhq/tally/transport/mdns"
)

// startResponder runs a discovery Responder on 127.0.0.1 signing with the
// given licensing identity until the test ends; it returns the Responder
// and its "127.0.0.1:PORT".
func startResponder(t *testing.T, key *ecdsa.PrivateKey, cert []byte, info discovery.OfferInfo) (*discovery.Responder, string) {
	t.Helper()
	conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r, err := discovery.NewResponder(discovery.Config{
		Conn: conn, Signer: key, Certificate: cert,
		Offer:  func() discovery.OfferInfo { return info },
		Limits: discovery.Limits{RatePerSource: 1000, Burst: 1000},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("responder: %v", err)
		}
		conn.Close()
	})
	return r, conn.LocalAddr().String()
}

func labInfo() discovery.OfferInfo {
	return discovery.OfferInfo{
		Endpoints: []discovery.Endpoint{
			{NodeID: "node-a", URL: "wss://10.0.0.1:8443/ws/device"},
			{NodeID: "node-b", URL: "wss://10.0.0.2:8443/ws/device"},
		},
		Cluster: "pune-lab", Leader: "node-b", NodeID: "node-a",
	}
}

func TestDiscoverPinsOnFirstUse(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	id := devicetest.NewIdentity(t)
	_, addr := startResponder(t, id.Key, id.Certificate, labInfo())
	disc := []string{"--hostid", "disc-1", "discover", "--timeout", "300ms", "--target", addr}

	r := agent(t, disc...)
	if r.code != 0 {
		t.Fatalf("discover: %+v", r)
	}
	for _, want := range []string{"node:         node-a", "cluster:      pune-lab", "leader:       node-b",
		"fingerprint:  " + id.Fingerprint, "wss://10.0.0.2:8443/ws/device (node-b, leader)", "wss://10.0.0.1:8443/ws/device (node-a)"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("discover output lacks %q:\n%s", want, r.stdout)
		}
	}
	if strings.Index(r.stdout, "10.0.0.2") > strings.Index(r.stdout, "10.0.0.1") {
		t.Errorf("the leader's endpoint is not first:\n%s", r.stdout)
	}
	trust := filepath.Join(home, ".tally-agent", "server.fingerprint")
	if !strings.Contains(r.stderr, "first use") || !strings.Contains(r.stderr, id.Fingerprint) || !strings.Contains(r.stderr, trust) {
		t.Errorf("first use not announced: %q", r.stderr)
	}
	fi, err := os.Stat(trust)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("trust file: %v %v", fi, err)
	}
	if di, err := os.Stat(filepath.Dir(trust)); err != nil || di.Mode().Perm() != 0o700 {
		t.Fatalf("trust dir: %v %v", di, err)
	}
	if data, _ := os.ReadFile(trust); strings.TrimSpace(string(data)) != id.Fingerprint {
		t.Fatalf("trust file holds %q", data)
	}

	// The second run accepts the pinned server quietly.
	var out discoverJSON
	r = agent(t, append([]string{"--json"}, disc...)...)
	if r.code != 0 || r.stderr != "" {
		t.Fatalf("second discover: %+v", r)
	}
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
		t.Fatal(err)
	}
	if out.FirstUse || out.PinnedBy != trust || out.Fingerprint != id.Fingerprint || len(out.Offers) != 1 ||
		out.Offers[0].Node != "node-a" || out.URLs[0] != "wss://10.0.0.2:8443/ws/device" || len(out.Offers[0].Endpoints) != 2 {
		t.Fatalf("discover --json: %+v", out)
	}

	// Another server, with another licensing ID, is refused.
	other := devicetest.NewIdentity(t)
	_, otherAddr := startResponder(t, other.Key, other.Certificate, labInfo())
	r = agent(t, "--hostid", "disc-1", "discover", "--timeout", "300ms", "--target", otherAddr)
	if r.code != 1 || !strings.Contains(r.stderr, id.Fingerprint) || !strings.Contains(r.stderr, other.Fingerprint) || !strings.Contains(r.stderr, trust) {
		t.Fatalf("another server: %+v", r)
	}
	if data, _ := os.ReadFile(trust); strings.TrimSpace(string(data)) != id.Fingerprint {
		t.Fatalf("trust file changed to %q", data)
	}
}

func TestDiscoverIdentity(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	id := devicetest.NewIdentity(t)
	other := devicetest.NewIdentity(t)
	_, addr := startResponder(t, id.Key, id.Certificate, labInfo())
	trust := filepath.Join(home, ".tally-agent", "server.fingerprint")

	r := agent(t, "--identity", other.Fingerprint, "discover", "--timeout", "300ms", "--target", addr)
	if r.code != 1 || !strings.Contains(r.stderr, id.Fingerprint) || !strings.Contains(r.stderr, other.Fingerprint) || !strings.Contains(r.stderr, "--identity") {
		t.Fatalf("--identity mismatch: %+v", r)
	}
	r = agent(t, "--identity", strings.ToLower(strings.ReplaceAll(id.Fingerprint, ":", "")), "discover", "--timeout", "300ms", "--target", addr)
	if r.code != 0 || !strings.Contains(r.stdout, id.Fingerprint) || r.stderr != "" {
		t.Fatalf("--identity match: %+v", r)
	}
	if _, err := os.Stat(trust); !os.IsNotExist(err) {
		t.Fatalf("--identity wrote the trust file: %v", err)
	}
	if r := agent(t, "--identity", "nonsense", "discover", "--timeout", "300ms", "--target", addr); r.code != 2 {
		t.Fatalf("bad --identity: %+v", r)
	}
}

func TestDiscoverRefusesTwoIdentitiesOnFirstUse(t *testing.T) {
	t.Setenv("HOME", t.TempDir())
	a, b := devicetest.NewIdentity(t), devicetest.NewIdentity(t)
	infoB := labInfo()
	infoB.NodeID = "node-b"
	_, addrA := startResponder(t, a.Key, a.Certificate, labInfo())
	_, addrB := startResponder(t, b.Key, b.Certificate, infoB)
	r := agent(t, "discover", "--timeout", "300ms", "--target", addrA, "--target", addrB)
	if r.code != 1 || !strings.Contains(r.stderr, a.Fingerprint) || !strings.Contains(r.stderr, b.Fingerprint) {
		t.Fatalf("two identities: %+v", r)
	}
}

func TestServerDiscoverCheckout(t *testing.T) {
	t.Setenv("HOME", t.TempDir())
	srv := devicetest.NewServer(t, device.Config{})
	// The leader's endpoint is dead, so the agent falls back to node1.
	info := discovery.OfferInfo{
		Endpoints: []discovery.Endpoint{
			{NodeID: "node0", URL: "wss://127.0.0.1:1/ws/device"},
			{NodeID: "node1", URL: srv.URL},
		},
		Leader: "node0", NodeID: "node1",
	}
	_, addr := startResponder(t, srv.Identity.Key, srv.Identity.Certificate, info)
	dev := []string{"--server", "discover", "--target", addr, "--discovery-timeout", "300ms",
		"--fingerprint", srv.TLSFingerprint, "--hostid", "agent-disc"}

	r := agent(t, append(dev, "checkout", "cad", "1.0", "1")...)
	if r.code != 0 || !strings.Contains(r.stdout, "cad 1.0: 1 held") || !strings.Contains(r.stderr, "first use") {
		t.Fatalf("checkout with --server discover: %+v", r)
	}
	if got := srv.Used(t, "cad", "1.0"); got != 1 {
		t.Fatalf("used %d", got)
	}
	mustAgent(t, append(dev, "return", "cad")...)

	// A rogue server whose OFFER points at the real endpoint: pinned on
	// first use in a fresh home, the device protocol's identity check
	// refuses the real server's different licensing ID.
	rogueHome := t.TempDir()
	t.Setenv("HOME", rogueHome)
	rogue := devicetest.NewIdentity(t)
	_, rogueAddr := startResponder(t, rogue.Key, rogue.Certificate, info)
	r = agent(t, "--server", "discover", "--target", rogueAddr, "--discovery-timeout", "300ms",
		"--fingerprint", srv.TLSFingerprint, "--hostid", "agent-disc", "hello")
	if r.code != 1 || !strings.Contains(r.stderr, "fingerprint") {
		t.Fatalf("rogue offer: %+v", r)
	}
	if _, err := os.Stat(filepath.Join(rogueHome, ".tally-agent", "server.fingerprint")); !os.IsNotExist(err) {
		t.Fatalf("the rogue's fingerprint was pinned: %v", err)
	}
}

// syncBuffer is a bytes.Buffer safe to read while run writes to it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestListenAnswersScanAndPing(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr syncBuffer
	code := make(chan int, 1)
	go func() {
		code <- runContext(ctx, []string{"--hostid", "dev-1", "--alias", "bench 3", "listen", "--port", "0", "--bind", "127.0.0.1"}, &stdout, &stderr)
	}()
	listening := regexp.MustCompile(`listening on udp (127\.0\.0\.1:\d+)`)
	var agentAddr netip.AddrPort
	for deadline := time.Now().Add(10 * time.Second); ; {
		if m := listening.FindStringSubmatch(stdout.String()); m != nil {
			agentAddr = netip.MustParseAddrPort(m[1])
			break
		}
		select {
		case c := <-code:
			t.Fatalf("listen exited %d: %s", c, stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("listen did not start: %q %q", stdout.String(), stderr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}

	id := devicetest.NewIdentity(t)
	resp, _ := startResponder(t, id.Key, id.Certificate, labInfo())
	scan := func() discovery.Found {
		t.Helper()
		job, err := resp.Scan(ctx, discovery.ScanOptions{Targets: []netip.AddrPort{agentAddr}, Timeout: 500 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		<-job.Done()
		res := job.Results()
		if len(res) != 1 {
			t.Fatalf("scan found %d devices", len(res))
		}
		return res[0]
	}
	f := scan()
	if f.DeviceID() != (discovery.HostID{Type: discovery.HostIDString, Value: "dev-1"}) || f.Alias != "bench 3" || f.Onboarded {
		t.Fatalf("found %+v", f)
	}

	// Onboarded (a key file) with this server (the pinned fingerprint).
	dir := filepath.Join(home, ".tally-agent")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "dev-1.key"), []byte("key"), 0o600)
	os.WriteFile(filepath.Join(dir, "server.fingerprint"), []byte(id.Fingerprint+"\n"), 0o600)
	if f := scan(); !f.Onboarded || f.OnboardedWith.String() != id.Fingerprint || !f.Here {
		t.Fatalf("found after onboarding %+v", f)
	}

	pres, err := resp.Ping(ctx, []netip.AddrPort{agentAddr}, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if p := pres[agentAddr]; !p.Online || p.DeviceID.Value != "dev-1" {
		t.Fatalf("ping: %+v", pres)
	}

	cancel()
	select {
	case c := <-code:
		if c != 0 {
			t.Fatalf("listen exited %d: %s", c, stderr.String())
		}
	case <-time.After(5 * time.Second):
		t.Fatal("listen did not stop")
	}
}

func TestDiscoveryUsageErrors(t *testing.T) {
	t.Setenv("HOME", t.TempDir())
	for _, args := range [][]string{
		{"--discovery-port", "0", "status"},
		{"--discovery-timeout", "0s", "status"},
		{"discover", "extra"},
		{"discover", "--timeout", "0s"},
		{"discover", "--target", "127.0.0.1:notaport"},
		{"discover", "--target", "[::1]:30005"},
		{"listen", "--bind", "::1"},
		{"listen", "--port", "70000"},
		{"listen", "now"},
	} {
		r := agent(t, args...)
		if r.code != 2 || !strings.HasPrefix(r.stderr, "tally-agent: ") {
			t.Errorf("%q: %+v", args, r)
		}
	}
}

// TestDiscoverBrowsesMDNS: with --mdns the agent lists the servers that
// announce _tally._tcp; it still fails when none answers a verified OFFER.
func TestDiscoverBrowsesMDNS(t *testing.T) {
	t.Setenv("HOME", t.TempDir())
	responder, err := mdns.NewResponder(mdns.Config{
		Instance: "Tally on mdns-test",
		Host:     "tally-mdns-test.local.",
		Services: []mdns.Service{{Type: "_tally._tcp", Port: 8443, TXT: map[string]string{"fp": "AB:CD", "v": "1"}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := responder.Start(ctx); err != nil {
		t.Skipf("no multicast interface to announce on here: %v", err)
	}
	defer responder.Close()
	// No server answers DISCOVER at this target; mDNS still finds one.
	r := agent(t, "--hostid", "browser", "discover", "--mdns", "--timeout", "3s", "--target", "127.0.0.1:9")
	if r.code != 1 || !strings.Contains(r.stdout, "Tally on mdns-test") || !strings.Contains(r.stdout, "8443") {
		t.Fatalf("discover --mdns: %+v", r)
	}
}
