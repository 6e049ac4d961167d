package discovery

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// broadcastDomain is a bridge in a network namespace of its own with one
// veth port per member namespace, each member on 10.77.0.0/24: a real
// broadcast domain, unlike loopback.
type broadcastDomain struct {
	ip      string
	bridge  string
	members map[string]netip.Addr // namespace name -> address
}

// newBroadcastDomain builds the domain, or skips the test when it cannot
// (not root, no ip command, no permission to make namespaces). Everything
// it makes is deleted when the test ends.
func newBroadcastDomain(t *testing.T, members int) (*broadcastDomain, []string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to create network namespaces")
	}
	ipCmd, err := exec.LookPath("ip")
	if err != nil {
		t.Skip("needs the ip command (iproute2) to create network namespaces")
	}
	var r [3]byte
	if _, err := rand.Read(r[:]); err != nil {
		t.Fatal(err)
	}
	suffix := hex.EncodeToString(r[:])
	d := &broadcastDomain{ip: ipCmd, bridge: "tallybr-" + suffix, members: map[string]netip.Addr{}}
	t.Cleanup(func() { d.run(t, "netns", "del", d.bridge) })
	if out, err := exec.Command(ipCmd, "netns", "add", d.bridge).CombinedOutput(); err != nil {
		t.Skipf("cannot create a network namespace here: %v: %s", err, out)
	}
	d.must(t, "-n", d.bridge, "link", "add", "br0", "type", "bridge")
	d.must(t, "-n", d.bridge, "link", "set", "br0", "up")
	names := make([]string, members)
	for i := range members {
		ns := fmt.Sprintf("tallyns%d-%s", i, suffix)
		addr := netip.AddrFrom4([4]byte{10, 77, 0, byte(i + 1)})
		names[i] = ns
		t.Cleanup(func() { d.run(t, "netns", "del", ns) })
		d.must(t, "netns", "add", ns)
		port := fmt.Sprintf("p%d", i)
		d.must(t, "-n", d.bridge, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", ns)
		d.must(t, "-n", d.bridge, "link", "set", port, "master", "br0", "up")
		d.must(t, "-n", ns, "link", "set", "lo", "up")
		d.must(t, "-n", ns, "addr", "add", addr.String()+"/24", "brd", "+", "dev", "eth0")
		d.must(t, "-n", ns, "link", "set", "eth0", "up")
		d.must(t, "-n", ns, "route", "add", "default", "dev", "eth0")
		d.members[ns] = addr
	}
	for _, ns := range names {
		d.waitUp(t, ns)
	}
	return d, names
}

func (d *broadcastDomain) run(t *testing.T, args ...string) {
	if out, err := exec.Command(d.ip, args...).CombinedOutput(); err != nil {
		t.Logf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
}

func (d *broadcastDomain) must(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command(d.ip, args...).CombinedOutput(); err != nil {
		t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
}

// waitUp waits, a bounded number of times, for eth0 of ns to have its
// carrier.
func (d *broadcastDomain) waitUp(t *testing.T, ns string) {
	t.Helper()
	for range 1000 {
		out, _ := exec.Command(d.ip, "-n", ns, "-o", "link", "show", "eth0").Output()
		if bytes.Contains(out, []byte("LOWER_UP")) {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("eth0 in %s never came up", ns)
}

// listenIn opens a UDP socket inside the namespace ns. The socket stays in
// that namespace whichever thread uses it later. The thread is switched
// back after; if that fails it is left locked, so the runtime retires it.
func listenIn(t *testing.T, ns, addr string) *net.UDPConn {
	t.Helper()
	type result struct {
		conn *net.UDPConn
		err  error
	}
	done := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			runtime.UnlockOSThread()
			done <- result{err: err}
			return
		}
		defer orig.Close()
		target, err := os.Open(filepath.Join("/var/run/netns", ns))
		if err != nil {
			runtime.UnlockOSThread()
			done <- result{err: err}
			return
		}
		defer target.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			done <- result{err: fmt.Errorf("setns %s: %w", ns, err)}
			return
		}
		conn, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.MustParseAddrPort(addr)))
		if unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET) == nil {
			runtime.UnlockOSThread()
		}
		done <- result{conn, err}
	}()
	r := <-done
	if r.err != nil {
		t.Fatalf("listen on %s in %s: %v", addr, ns, r.err)
	}
	t.Cleanup(func() { r.conn.Close() })
	return r.conn
}

// TestBroadcastDomain runs a server and two agents in three network
// namespaces on one bridge: an agent discovers the server by directed and
// limited broadcast, the server scans, pings and invites the agents, and a
// magic packet reaches a listener in another namespace.
func TestBroadcastDomain(t *testing.T) {
	d, ns := newBroadcastDomain(t, 3)
	server, agent1, agent2 := ns[0], ns[1], ns[2]
	id := newIdentity(t)
	r := startResponder(t, id, Config{Conn: listenIn(t, server, "0.0.0.0:30005"), Offer: testInfo("node-a", "node-a"), Now: time.Now})
	invites, invite := invitations()
	startAnswerer(t, AnswererConfig{Conn: listenIn(t, agent1, "0.0.0.0:30005"), Present: agentInfo("02:00:00:00:00:01", "one"),
		Trust: trusting(id.fp), Invite: invite, Now: time.Now})
	startAnswerer(t, AnswererConfig{Conn: listenIn(t, agent2, "0.0.0.0:30005"), Present: agentInfo("02:00:00:00:00:02", "two")})
	serverAddr := d.members[server]

	t.Run("discover", func(t *testing.T) {
		for _, target := range []string{"10.77.0.255", "255.255.255.255"} {
			offers, err := Discover(context.Background(), ClientConfig{
				Conn:              listenIn(t, agent1, "0.0.0.0:0"),
				Targets:           Targets([]netip.Addr{netip.MustParseAddr(target)}, DefaultPort),
				PinnedFingerprint: id.fp.String(), Timeout: longWait, StopAfter: 1,
			})
			if err != nil {
				t.Fatalf("discover via %s: %v", target, err)
			}
			if len(offers) != 1 || offers[0].From.Addr() != serverAddr || offers[0].Fingerprint != id.fp {
				t.Fatalf("discover via %s: %+v", target, offers)
			}
		}
	})

	t.Run("scan", func(t *testing.T) {
		found := make(chan Found, 8)
		job, err := r.Scan(context.Background(), ScanOptions{
			Targets: Targets([]netip.Addr{netip.MustParseAddr("10.77.0.255"), LimitedBroadcast()}, DefaultPort),
			Timeout: longWait, OnFound: func(f Found) { found <- f },
		})
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]netip.Addr{}
		for range 2 {
			f := <-found
			got[f.Alias] = f.From.Addr()
		}
		job.Cancel()
		<-job.Done()
		if got["one"] != d.members[agent1] || got["two"] != d.members[agent2] || job.Progress().Answered != 2 {
			t.Fatalf("found %v, progress %+v", got, job.Progress())
		}
	})

	t.Run("ping", func(t *testing.T) {
		targets := Targets([]netip.Addr{d.members[agent1], d.members[agent2]}, DefaultPort)
		got, err := r.Ping(context.Background(), targets, longWait)
		if err != nil {
			t.Fatal(err)
		}
		for i, tg := range targets {
			want := HostID{HostIDEthernet, fmt.Sprintf("02:00:00:00:00:0%d", i+1)}
			if !got[tg].Online || got[tg].DeviceID != want {
				t.Fatalf("ping %s: %+v", tg, got[tg])
			}
		}
	})

	t.Run("invite", func(t *testing.T) {
		device := HostID{HostIDEthernet, "02:00:00:00:00:01"}
		if err := r.Invite(netip.AddrPortFrom(d.members[agent1], DefaultPort), device, testSecret); err != nil {
			t.Fatal(err)
		}
		inv := <-invites
		if inv.From != netip.AddrPortFrom(serverAddr, DefaultPort) || inv.Device != device || inv.Secret != testSecret || inv.Fingerprint != id.fp {
			t.Fatalf("invitation %+v", inv)
		}
	})

	t.Run("wake", func(t *testing.T) {
		mac := net.HardwareAddr{0x02, 0, 0, 0, 0, 0x02}
		listener := listenIn(t, agent2, "0.0.0.0:9")
		sender := listenIn(t, server, "0.0.0.0:0")
		targets := []netip.AddrPort{netip.MustParseAddrPort("10.77.0.255:0"), netip.AddrPortFrom(LimitedBroadcast(), 0)}
		if err := Wake(sender, mac, targets); err != nil {
			t.Fatal(err)
		}
		var last []byte
		var from netip.AddrPort
		for range targets {
			last, from = readPacket(t, listener)
			if !bytes.Equal(last, MagicPacket(mac)) || from.Addr() != serverAddr {
				t.Fatalf("listener got %x from %s", last, from)
			}
		}
		tshark, err := exec.LookPath("tshark")
		if err != nil {
			t.Log("tshark is not installed; the magic packet was checked byte by byte")
			return
		}
		path := filepath.Join(t.TempDir(), "wake.pcap")
		if err := writePcap(path, from, netip.MustParseAddrPort("10.77.0.255:9"), last); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(tshark, "-r", path, "-Y", "wol", "-T", "fields", "-e", "wol.mac").CombinedOutput()
		if err != nil || !strings.Contains(string(out), mac.String()) {
			t.Fatalf("tshark: %v: %q, want %s", err, out, mac)
		}
	})
}
