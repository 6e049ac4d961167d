package transport

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/tallyhq/tally/core/licensingid"
	"github.com/tallyhq/tally/transport/discovery"
)

// agentMAC is the ETHERNET hostid of the test agent.
const agentMAC = "00:11:22:33:44:55"

// discoveryRig is a discovery.Responder for the server on a loopback
// socket, an agent's discovery.Answerer on another, and a UDP listener
// standing for the broadcast address magic packets go to.
type discoveryRig struct {
	responder *discovery.Responder
	agent     netip.AddrPort // the Answerer's address
	wake      *net.UDPConn   // receives magic packets
	// invites receives the invitations the agent accepts: those signed by
	// the server's licensing ID.
	invites chan discovery.Invitation
}

func listenUDP(t testing.TB) *net.UDPConn {
	t.Helper()
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

func udpAddr(c net.PacketConn) netip.AddrPort {
	return c.LocalAddr().(*net.UDPAddr).AddrPort()
}

// runUntilCleanup runs a Serve method until the test ends.
func runUntilCleanup(t testing.TB, serve func(context.Context) error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
}

// newDiscoveryRig starts the rig and wires it into cfg: scans without
// targets and magic packets go to 127.0.0.1, scans to the agent's port,
// magic packets to the listener's.
func newDiscoveryRig(t testing.TB, id *licensingid.ID, cfg *Config) *discoveryRig {
	t.Helper()
	r, err := discovery.NewResponder(discovery.Config{Conn: listenUDP(t), Signer: id.Key, Certificate: id.Certificate,
		Offer: func() discovery.OfferInfo {
			return discovery.OfferInfo{NodeID: "node-a", Endpoints: []discovery.Endpoint{{NodeID: "node-a", URL: "wss://127.0.0.1:8443/ws/device"}}}
		}})
	if err != nil {
		t.Fatal(err)
	}
	runUntilCleanup(t, r.Serve)
	agentConn := listenUDP(t)
	invites := make(chan discovery.Invitation, 4)
	a, err := discovery.NewAnswerer(discovery.AnswererConfig{Conn: agentConn, Present: func() discovery.PresentInfo {
		return discovery.PresentInfo{HostIDs: []discovery.HostID{{Type: discovery.HostIDEthernet, Value: agentMAC},
			{Type: discovery.HostIDString, Value: "press-1"}}, Alias: "press line 1", Onboarded: true, OnboardedWith: r.Fingerprint()}
	},
		Trust:  func(fp discovery.Fingerprint) bool { return fp == r.Fingerprint() },
		Invite: func(inv discovery.Invitation) { invites <- inv },
	})
	if err != nil {
		t.Fatal(err)
	}
	runUntilCleanup(t, a.Serve)
	rig := &discoveryRig{responder: r, agent: udpAddr(agentConn), wake: listenUDP(t), invites: invites}
	cfg.Discovery = r
	cfg.DiscoveryPort = rig.agent.Port()
	cfg.WakeConn = listenUDP(t)
	cfg.WakePort = udpAddr(rig.wake).Port()
	cfg.BroadcastTargets = func() []netip.Addr { return []netip.Addr{netip.MustParseAddr("127.0.0.1")} }
	return rig
}

// noPacket checks that nothing arrives at conn for a while.
func noPacket(t testing.TB, conn *net.UDPConn) {
	t.Helper()
	conn.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	buf := make([]byte, 2048)
	if n, _, err := conn.ReadFrom(buf); err == nil {
		t.Fatalf("a %d-byte packet was sent", n)
	}
}

func newDiscoveryEnv(t *testing.T) (*testEnv, *discoveryRig) {
	var rig *discoveryRig
	id := testIdentity(t)
	e := newTestEnv(t, func(c *Config) { rig = newDiscoveryRig(t, id, c) })
	t.Cleanup(e.server.stopScans)
	return e, rig
}

// waitScan polls the scan until it is done. The bound is far beyond the
// scan's own timeout; it is only reached when something is broken.
func waitScan(t *testing.T, e *testEnv) scanStatusResponse {
	t.Helper()
	for range 1200 {
		var st scanStatusResponse
		r := e.do("GET", "/api/v1/discovery/scan", "", "", true)
		if r.status != http.StatusOK {
			t.Fatalf("scan status: %d %s", r.status, r.body)
		}
		r.json(t, &st)
		if st.Progress != nil && st.Progress.Done {
			return st
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("the scan never ended")
	return scanStatusResponse{}
}

func discoveredList(t *testing.T, e *testEnv) pagedList[discoveredDevice] {
	t.Helper()
	r := e.do("GET", "/api/v1/discovery/devices", "", "", true)
	if r.status != http.StatusOK {
		t.Fatalf("devices: %d %s", r.status, r.body)
	}
	var l pagedList[discoveredDevice]
	r.json(t, &l)
	return l
}

func TestDiscoveryScanPingWake(t *testing.T) {
	e, rig := newDiscoveryEnv(t)
	if st := waitOrNil(t, e); st.Progress != nil || st.Found != 0 {
		t.Fatalf("before any scan: %+v", st)
	}
	body := fmt.Sprintf(`{"targets":["%s"],"timeoutSeconds":1}`, rig.agent)
	r := e.do("POST", "/api/v1/discovery/scan", "application/json", body, true)
	if r.status != http.StatusAccepted {
		t.Fatalf("scan: %d %s", r.status, r.body)
	}
	var started scanStatusResponse
	r.json(t, &started)
	if started.Progress == nil || started.Progress.Targets != 1 || started.Progress.Timeout != 1 {
		t.Fatalf("scan answer %s", r.body)
	}
	st := waitScan(t, e)
	if st.Found != 1 || st.Progress.Answered != 1 || st.Progress.Sent != 1 {
		t.Fatalf("finished scan %+v %+v", st, *st.Progress)
	}
	l := discoveredList(t, e)
	if l.Total != 1 || len(l.Items) != 1 {
		t.Fatalf("devices %+v", l)
	}
	d := l.Items[0]
	if d.Address != rig.agent.String() || len(d.HostIDs) != 2 || d.HostIDs[0].Value != agentMAC || d.HostIDs[0].Type.String() != "ETHERNET" ||
		d.Alias != "press line 1" || !d.Onboarded || !d.Here || d.Fingerprint != rig.responder.Fingerprint().String() || !d.Online ||
		d.LastSeen != t0.Format(time.RFC3339) {
		t.Fatalf("device %+v", d)
	}

	t.Run("a second scan merges by device ID", func(t *testing.T) {
		// No targets: the broadcast targets (127.0.0.1) with DiscoveryPort.
		r := e.do("POST", "/api/v1/discovery/scan", "application/json", `{"timeoutSeconds":0.5}`, true)
		if r.status != http.StatusAccepted {
			t.Fatalf("scan: %d %s", r.status, r.body)
		}
		if st := waitScan(t, e); st.Found != 1 {
			t.Fatalf("found %d", st.Found)
		}
		if l := discoveredList(t, e); l.Total != 1 {
			t.Fatalf("devices %+v", l)
		}
	})

	t.Run("ping", func(t *testing.T) {
		e.clock.advance(time.Minute)
		r := e.do("POST", "/api/v1/discovery/ping", "", "", true)
		if r.status != http.StatusOK {
			t.Fatalf("ping: %d %s", r.status, r.body)
		}
		var p pingResponse
		r.json(t, &p)
		if p.Total != 1 || p.Online != 1 || !p.Items[0].Online || p.Items[0].LastSeen != t0.Add(time.Minute).Format(time.RFC3339) {
			t.Fatalf("ping %s", r.body)
		}
	})

	t.Run("wake", func(t *testing.T) {
		r := e.do("POST", "/api/v1/discovery/wake", "application/json", `{"device":{"type":"ETHERNET","value":"00-11-22-33-44-55"}}`, true)
		if r.status != http.StatusAccepted {
			t.Fatalf("wake: %d %s", r.status, r.body)
		}
		var w wakeResponse
		r.json(t, &w)
		if w.Device.Value != agentMAC || len(w.Targets) != 1 || w.Targets[0] != udpAddr(rig.wake).String() || w.Failed != 0 {
			t.Fatalf("wake answer %s", r.body)
		}
		rig.wake.SetReadDeadline(time.Now().Add(time.Minute))
		buf := make([]byte, 2048)
		n, _, err := rig.wake.ReadFrom(buf)
		if err != nil {
			t.Fatal(err)
		}
		mac, _ := net.ParseMAC(agentMAC)
		if !bytes.Equal(buf[:n], discovery.MagicPacket(mac)) {
			t.Fatalf("received % x, not the magic packet", buf[:n])
		}
		if !strings.Contains(e.logs.String(), "magic packet sent") {
			t.Error("the wake is not logged")
		}
	})
}

// waitOrNil reads the scan status once.
func waitOrNil(t *testing.T, e *testEnv) scanStatusResponse {
	t.Helper()
	var st scanStatusResponse
	r := e.do("GET", "/api/v1/discovery/scan", "", "", true)
	if r.status != http.StatusOK {
		t.Fatalf("scan status: %d %s", r.status, r.body)
	}
	r.json(t, &st)
	return st
}

func TestDiscoveryPingGoesOffline(t *testing.T) {
	e, rig := newDiscoveryEnv(t)
	// A device that answers the scan and then is gone: a fake agent that
	// answers one SCAN and nothing after.
	fake := listenUDP(t)
	go func() {
		buf := make([]byte, 2048)
		n, from, err := fake.ReadFrom(buf)
		if err != nil {
			return
		}
		p, err := discovery.Decode(buf[:n])
		if err != nil || p.Type != discovery.TypeScan {
			return
		}
		b, _ := discovery.Encode(discovery.Packet{Type: discovery.TypePresent, Nonce: p.Nonce,
			HostIDs: []discovery.HostID{{Type: discovery.HostIDEthernet, Value: "00:11:22:33:44:66"}}})
		to := from.(*net.UDPAddr)
		to.Port = int(p.ReplyPort)
		fake.WriteTo(b, to)
	}()
	body := fmt.Sprintf(`{"targets":["%s","%s"],"timeoutSeconds":1}`, rig.agent, udpAddr(fake))
	if r := e.do("POST", "/api/v1/discovery/scan", "application/json", body, true); r.status != http.StatusAccepted {
		t.Fatalf("scan: %d %s", r.status, r.body)
	}
	if st := waitScan(t, e); st.Found != 2 {
		t.Fatalf("found %d", st.Found)
	}
	r := e.do("POST", "/api/v1/discovery/ping", "", "", true)
	var p pingResponse
	r.json(t, &p)
	if p.Total != 2 || p.Online != 1 {
		t.Fatalf("ping %s", r.body)
	}
	for _, d := range p.Items {
		if d.Online != (d.HostIDs[0].Value == agentMAC) {
			t.Errorf("device %+v", d)
		}
	}
}

func TestDiscoveryScanRunning(t *testing.T) {
	e, rig := newDiscoveryEnv(t)
	body := fmt.Sprintf(`{"targets":["%s"],"timeoutSeconds":120}`, rig.agent)
	if r := e.do("POST", "/api/v1/discovery/scan", "application/json", body, true); r.status != http.StatusAccepted {
		t.Fatalf("scan: %d %s", r.status, r.body)
	}
	wantError(t, e.do("POST", "/api/v1/discovery/scan", "application/json", body, true), http.StatusConflict, "scan_running")
	if st := waitOrNil(t, e); st.Progress == nil || st.Progress.Done {
		t.Fatalf("status %+v", st)
	}
}

func TestDiscoveryBadInput(t *testing.T) {
	e, rig := newDiscoveryEnv(t)
	scanCases := map[string]struct{ body, code string }{
		"bad CIDR":        {`{"targets":["10.1.2.0/33"]}`, "bad_target"},
		"not an address":  {`{"targets":["printer.local"]}`, "bad_target"},
		"port 0":          {`{"targets":["127.0.0.1:0"]}`, "bad_target"},
		"range too large": {`{"targets":["10.0.0.0/19"]}`, "too_many_targets"},
		"too many in all": {`{"targets":["10.0.0.0/20","10.1.0.0/24"]}`, "too_many_targets"},
		"zero timeout":    {`{"timeoutSeconds":0}`, "bad_timeout"},
		"negative":        {`{"timeoutSeconds":-1}`, "bad_timeout"},
		"huge timeout":    {`{"timeoutSeconds":100000}`, "bad_timeout"},
		"string timeout":  {`{"timeoutSeconds":"6s"}`, "bad_json"},
		"unknown field":   {`{"targets":[],"port":1}`, "bad_json"},
		"two values":      {`{}{}`, "bad_json"},
	}
	for name, c := range scanCases {
		t.Run("scan/"+name, func(t *testing.T) {
			wantError(t, e.do("POST", "/api/v1/discovery/scan", "application/json", c.body, true), http.StatusBadRequest, c.code)
		})
	}
	wakeCases := map[string]struct{ body, code string }{
		"not ETHERNET":  {`{"device":{"type":"UUID","value":"123e4567-e89b-12d3-a456-426614174000"}}`, "not_wakeable"},
		"string":        {`{"device":{"type":"STRING","value":"press-1"}}`, "not_wakeable"},
		"bad MAC":       {`{"device":{"type":"ETHERNET","value":"00:11:22"}}`, "bad_hostid"},
		"unknown type":  {`{"device":{"type":"IMEI","value":"1"}}`, "bad_hostid"},
		"no device":     {`{}`, "bad_json"},
		"unknown field": {`{"device":{"type":"ETHERNET","value":"` + agentMAC + `"},"port":9}`, "bad_json"},
	}
	for name, c := range wakeCases {
		t.Run("wake/"+name, func(t *testing.T) {
			wantError(t, e.do("POST", "/api/v1/discovery/wake", "application/json", c.body, true), http.StatusBadRequest, c.code)
		})
	}
	// Nothing was sent: no scan ran, no magic packet went out.
	if st := waitOrNil(t, e); st.Progress != nil {
		t.Errorf("a refused request started a scan: %+v", st)
	}
	noPacket(t, rig.wake)
	wantError(t, e.do("POST", "/api/v1/discovery/scan", "text/plain", `{}`, true), http.StatusUnsupportedMediaType, "unsupported_media_type")
}

func TestDiscoveryTargets(t *testing.T) {
	got, err := parseScanTargets([]string{"10.1.2.0/30", "10.1.2.1", "10.1.2.9:4000", "10.9.9.9/32", "::ffff:10.1.2.3"}, 30005)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"10.1.2.1:30005", "10.1.2.2:30005", "10.1.2.9:4000", "10.9.9.9:30005", "10.1.2.3:30005"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("targets %v, want %v", got, want)
	}
	got, err = parseScanTargets([]string{"10.1.0.0/20"}, 1)
	if err != nil || len(got) != 4094 {
		t.Errorf("a /20: %d targets, %v", len(got), err)
	}
	got, err = parseScanTargets([]string{"10.1.2.0/24"}, 1)
	if err != nil || len(got) != 254 || got[0].String() != "10.1.2.1:1" || got[253].String() != "10.1.2.254:1" {
		t.Errorf("a /24: %d targets, %v", len(got), err)
	}
}

func TestDiscoveryNotConfigured(t *testing.T) {
	e := newTestEnv(t)
	for _, rq := range []struct{ method, path, body string }{
		{"POST", "/api/v1/discovery/scan", `{}`},
		{"GET", "/api/v1/discovery/scan", ""},
		{"GET", "/api/v1/discovery/devices", ""},
		{"POST", "/api/v1/discovery/ping", ""},
		{"POST", "/api/v1/discovery/wake", `{"device":{"type":"ETHERNET","value":"` + agentMAC + `"}}`},
	} {
		ct := ""
		if rq.body != "" {
			ct = "application/json"
		}
		wantError(t, e.do(rq.method, rq.path, ct, rq.body, true), http.StatusServiceUnavailable, "not_available")
	}
}
