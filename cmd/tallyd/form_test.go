package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tallyhq/tally/raft"
	"github.com/tallyhq/tally/raft/clustertls"
	"github.com/tallyhq/tally/transport/mdns"
)

const testTLSHash = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"

// peerInstance is a browsed _tally-ha._tcp instance of node id at ip.
func peerInstance(id, state, expect, ip string) mdns.Instance {
	in := mdns.Instance{Name: id, Host: mdnsHost(id), Port: 61616,
		TXT: map[string]string{"node": id, "state": state, "expect": expect, "tls": testTLSHash}}
	if ip != "" {
		in.Addrs = []netip.Addr{netip.MustParseAddr(ip)}
	}
	return in
}

func TestFoundingSet(t *testing.T) {
	tests := []struct {
		name      string
		instances []mdns.Instance
		forming   string // node IDs, sorted
		founders  string
		members   string
	}{
		{"too few", []mdns.Instance{
			peerInstance("b", "forming", "3", "10.0.0.2"),
			peerInstance("a", "forming", "3", "10.0.0.1"),
		}, "a,b", "", ""},
		{"exactly expect, sorted by node ID", []mdns.Instance{
			peerInstance("c", "forming", "3", "10.0.0.3"),
			peerInstance("a", "forming", "3", "10.0.0.1"),
			peerInstance("b", "forming", "3", "10.0.0.2"),
		}, "a,b,c", "a,b,c", ""},
		{"the lowest node IDs found", []mdns.Instance{
			peerInstance("d", "forming", "3", "10.0.0.4"),
			peerInstance("b", "forming", "3", "10.0.0.2"),
			peerInstance("c", "forming", "3", "10.0.0.3"),
			peerInstance("a", "forming", "3", "10.0.0.1"),
		}, "a,b,c,d", "a,b,c", ""},
		{"another expectation, members, no address, bad node ID are not forming", []mdns.Instance{
			peerInstance("a", "forming", "3", "10.0.0.1"),
			peerInstance("b", "forming", "5", "10.0.0.2"),
			peerInstance("c", "member", "", "10.0.0.3"),
			peerInstance("d", "forming", "3", ""),
			peerInstance("e f", "forming", "3", "10.0.0.5"),
			peerInstance("g", "joining", "3", "10.0.0.7"),
			peerInstance("h", "forming", "3", "10.0.0.8"),
			peerInstance("i", "forming", "3", "10.0.0.9"),
		}, "a,h,i", "a,h,i", "c"},
		{"a node ID twice counts once", []mdns.Instance{
			peerInstance("a", "forming", "3", "10.0.0.1"),
			peerInstance("a", "forming", "3", "10.0.0.9"),
			peerInstance("b", "forming", "3", "10.0.0.2"),
		}, "a,b", "", ""},
	}
	ids := func(nodes []formingNode) string {
		var out []string
		for _, n := range nodes {
			out = append(out, n.ID)
		}
		return strings.Join(out, ",")
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			forming, members := formingNodes(tt.instances, 3, nil)
			founders := foundingSet(forming, 3)
			if ids(forming) != tt.forming || ids(founders) != tt.founders || strings.Join(members, ",") != tt.members {
				t.Fatalf("forming %s, founders %s, members %v; want %s, %s, %s",
					ids(forming), ids(founders), members, tt.forming, tt.founders, tt.members)
			}
		})
	}
	forming, _ := formingNodes([]mdns.Instance{peerInstance("b", "forming", "3", "10.0.0.2")}, 3, nil)
	if want := (formingNode{ID: "b", Addr: netip.MustParseAddrPort("10.0.0.2:61616"), TLS: testTLSHash}); forming[0] != want {
		t.Fatalf("forming node %+v, want %+v", forming[0], want)
	}
}

// testFounders are three founding nodes; a is the seed.
var testFounders = []formingNode{
	{ID: "a", Addr: netip.MustParseAddrPort("10.0.0.1:61616")},
	{ID: "b", Addr: netip.MustParseAddrPort("10.0.0.2:61616")},
	{ID: "c", Addr: netip.MustParseAddrPort("10.0.0.3:61616")},
}

func testSeed(t *testing.T, founders []formingNode) *formingSeed {
	t.Helper()
	ca, err := clustertls.NewCA(clusterLabel, time.Now(), nil)
	if err != nil {
		t.Fatal(err)
	}
	return newFormingSeed(ca, founders, founders[0].ID, time.Now)
}

func testCSR(t *testing.T, nodeID string) []byte {
	t.Helper()
	_, csr, err := nodeKeyAndCSR(nodeID)
	if err != nil {
		t.Fatal(err)
	}
	return csr
}

func TestFormingSeedRefuses(t *testing.T) {
	seed := testSeed(t, testFounders)
	tests := []struct {
		name   string
		req    formRequest
		from   string
		want   error
		status int
	}{
		{"a node outside the founding set", formRequest{NodeID: "d", CSR: testCSR(t, "d")}, "10.0.0.4", errNotFoundingMember, http.StatusForbidden},
		{"the seed's own node ID", formRequest{NodeID: "a", CSR: testCSR(t, "a")}, "10.0.0.1", errNotFoundingMember, http.StatusForbidden},
		{"another address than announced", formRequest{NodeID: "b", CSR: testCSR(t, "b")}, "10.0.0.3", errWrongAddress, http.StatusForbidden},
		{"a CSR that is not one", formRequest{NodeID: "b", CSR: []byte("not a CSR")}, "10.0.0.2", clustertls.ErrBadCSR, http.StatusBadRequest},
		{"a CSR for another node", formRequest{NodeID: "b", CSR: testCSR(t, "c")}, "10.0.0.2", clustertls.ErrBadCSR, http.StatusBadRequest},
		{"no CSR", formRequest{NodeID: "b"}, "10.0.0.2", clustertls.ErrBadCSR, http.StatusBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := seed.answer(tt.req, netip.MustParseAddr(tt.from))
			if !errors.Is(err, tt.want) {
				t.Fatalf("answer: %v, want %v", err, tt.want)
			}
			if status, _ := formStatus(err); status != tt.status {
				t.Fatalf("status %d, want %d", status, tt.status)
			}
		})
	}
	if got := seed.missing(); !slices.Equal(got, []string{"b", "c"}) {
		t.Fatalf("after refusals %v miss their certificates, want b and c", got)
	}
}

func TestFormingSeedAnswers(t *testing.T) {
	seed := testSeed(t, testFounders)
	for i, id := range []string{"b", "c"} {
		select {
		case <-seed.done:
			t.Fatalf("done before %s has its certificate", id)
		default:
		}
		key, csr, err := nodeKeyAndCSR(id)
		if err != nil {
			t.Fatal(err)
		}
		// An IPv4-mapped source address is the announced IPv4 address.
		ans, err := seed.answer(formRequest{NodeID: id, CSR: csr}, netip.MustParseAddr(fmt.Sprintf("::ffff:10.0.0.%d", i+2)))
		if err != nil {
			t.Fatal(err)
		}
		ident, err := clustertls.NewIdentity(ans.CA, ans.Certificate, key)
		if err != nil || ident.NodeID != id {
			t.Fatalf("identity of %s from the answer: %v %v", id, ident, err)
		}
		if len(ans.Members) != 3 || ans.Members[0].ID != "a" || ans.Members[2].Address != "10.0.0.3:61616" || !ans.Members[1].Voter {
			t.Fatalf("members %+v", ans.Members)
		}
	}
	select {
	case <-seed.done:
	default:
		t.Fatalf("not done; missing %v", seed.missing())
	}
	// A node that asks again (its answer was lost) gets another certificate.
	if _, err := seed.answer(formRequest{NodeID: "b", CSR: testCSR(t, "b")}, netip.MustParseAddr("10.0.0.2")); err != nil {
		t.Fatal(err)
	}
}

// TestFormingServer runs the forming exchange over loopback: the server
// on a lent listener, a client that pins its certificate, and the
// listener still accepting after the server stopped.
// startFormingServer serves forming for node "a" on a loopback listener,
// with auth; the listener closes when the test ends.
func startFormingServer(t *testing.T, auth *formAuth) (net.Listener, *formingServer, formingNode) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	cert, fingerprint, err := formingCertificate("a", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	server, err := serveForming(ln, cert, auth, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	return ln, server, formingNode{ID: "a", Addr: netip.MustParseAddrPort(ln.Addr().String()), TLS: fingerprint}
}

func TestFormingServer(t *testing.T) {
	ln, server, seedNode := startFormingServer(t, nil)
	at, fingerprint := seedNode.Addr, seedNode.TLS
	local := netip.MustParseAddr("127.0.0.1")
	key, csr, err := nodeKeyAndCSR("b")
	if err != nil {
		t.Fatal(err)
	}
	req := formRequest{NodeID: "b", CSR: csr}
	ctx := context.Background()

	if _, err := askSeed(ctx, seedNode, req, local, nil); err == nil || !strings.Contains(err.Error(), "not_ready") {
		t.Fatalf("before the seed is ready: %v", err)
	}
	impostor := seedNode
	impostor.TLS = testTLSHash
	if _, err := askSeed(ctx, impostor, req, local, nil); err == nil || !strings.Contains(err.Error(), "not the one it announced") {
		t.Fatalf("a server with another certificate: %v", err)
	}

	b := netip.AddrPortFrom(local, 40000)
	server.seed.Store(testSeed(t, []formingNode{seedNode, {ID: "b", Addr: b}}))
	resp, err := (&http.Client{Transport: &http.Transport{TLSClientConfig: pinnedTLS(fingerprint)}}).Post(
		"https://"+at.String()+"/form", "application/json", bytes.NewReader([]byte("{")))
	if err != nil {
		t.Fatal(err)
	}
	var refusal struct{ Code string }
	json.NewDecoder(resp.Body).Decode(&refusal)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || refusal.Code != "bad_request" {
		t.Fatalf("unreadable request: %d %q", resp.StatusCode, refusal.Code)
	}
	ans, err := askSeed(ctx, seedNode, req, local, nil)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	fc := formConfig{NodeID: "b", Expect: 2, Advertise: b, Dir: dir}
	if _, err := acceptAnswer(ans, key, fc); err != nil {
		t.Fatal(err)
	}
	if ident, err := clustertls.LoadIdentity(dir); err != nil || ident.NodeID != "b" {
		t.Fatalf("saved identity: %v %v", ident, err)
	}
	fc.Advertise = netip.AddrPortFrom(local, 40001)
	if _, err := acceptAnswer(ans, key, fc); err == nil || !strings.Contains(err.Error(), "knows this node at") {
		t.Fatalf("an answer with another address for this node: %v", err)
	}

	// Stopped, the server leaves the listener open for raft.
	server.stop()
	accepted := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			c.Close()
		}
		accepted <- err
	}()
	c, err := net.Dial("tcp", at.String())
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	if err := <-accepted; err != nil {
		t.Fatalf("the listener after forming: %v", err)
	}
}

func TestPrepareClusterBootstrapExpect(t *testing.T) {
	cfg := config{DataDir: t.TempDir(), Bind: "127.0.0.1", NodeID: "solo", BootstrapExpect: 1}
	log := slog.New(slog.DiscardHandler)
	setup, err := prepareCluster(context.Background(), cfg, time.Now(), log)
	if err != nil {
		t.Fatal(err)
	}
	setup.config.Listener.Close()
	if setup.how != "new cluster" || len(setup.config.Bootstrap) != 1 || setup.config.Bootstrap[0].ID != "solo" || len(setup.caKey) == 0 {
		t.Fatalf("--bootstrap-expect 1: %s, bootstrap %+v", setup.how, setup.config.Bootstrap)
	}
	// mDNS needs a LAN: on loopback forming fails at once.
	cfg = config{DataDir: t.TempDir(), Bind: "127.0.0.1", NodeID: "lonely", BootstrapExpect: 3}
	if _, err := prepareCluster(context.Background(), cfg, time.Now(), log); err == nil || !strings.Contains(err.Error(), "LAN") {
		t.Fatalf("--bootstrap-expect 3 on loopback: %v", err)
	}
}

func TestFormTimeoutSaysWhy(t *testing.T) {
	forming := append(slices.Clone(testFounders), formingNode{ID: "d"})
	fc := formConfig{NodeID: "d", Expect: 3, Deadline: 10 * time.Minute}
	err := formTimeout(fc, forming, []string{"m1"}, errors.New("a refused (not_founding_member)"))
	for _, want := range []string{"no cluster formed in 10m0s", "4 (a, b, c, d)", "not among the 3 with the lowest node IDs",
		"cluster members answer on this LAN (m1)", "--join-token", "not_founding_member"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q lacks %q", err, want)
		}
	}
	fc.NodeID = "b"
	if err := formTimeout(fc, forming[1:2], nil, nil); strings.Contains(err.Error(), "not among") || !strings.Contains(err.Error(), "1 (b)") {
		t.Errorf("too few nodes seen: %q", err)
	}
}

func TestMemberServices(t *testing.T) {
	if s := memberServices("n1", nil); s != nil {
		t.Fatalf("a node outside a cluster announces %v", s)
	}
	s := memberServices("n1", &clusterSetup{config: &raft.ClusterConfig{Advertise: "10.0.0.1:61616"}})
	if len(s) != 1 || s[0].Type != formService || s[0].Port != 61616 || s[0].TXT["state"] != "member" || s[0].TXT["node"] != "n1" {
		t.Fatalf("member services %+v", s)
	}
}

// TestBootstrapExpect forms a cluster of three real tallyd processes in
// three network namespaces on one bridge, by mDNS alone: no node is
// told of another. A write on a follower is seen on another node; a
// founding node killed with SIGKILL comes back as a member by its saved
// identity.
func TestBootstrapExpect(t *testing.T) {
	ipCmd, ns := lanNamespaces(t, "tform", "10.79.0", 4)
	bin := buildBinaries(t)
	work := t.TempDir()
	// The founders share a bootstrap secret; a stranger on the LAN with
	// the lowest node ID, and another secret, must not become the seed.
	secret, strangerSecret := filepath.Join(work, "secret"), filepath.Join(work, "stranger-secret")
	if err := os.WriteFile(secret, []byte("the founders' bootstrap secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(strangerSecret, []byte("a stranger's bootstrap secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := append(os.Environ(), "HOME="+filepath.Join(work, "home"),
		"TALLY_ADMIN_PASSWORD="+clusterPassword, "TALLY_PASSWORD="+clusterPassword)
	nodes := []string{"f1", "f2", "f3"}
	in := func(i int, prog string, args ...string) *exec.Cmd {
		cmd := exec.Command(ipCmd, append([]string{"netns", "exec", ns[i], filepath.Join(bin, prog)}, args...)...)
		cmd.Env = env
		return cmd
	}
	procs := map[int]*exec.Cmd{}
	t.Cleanup(func() {
		for _, p := range procs {
			p.Process.Kill()
			p.Wait()
		}
	})
	// start runs tallyd as node i; its stdout lines come on the channel.
	start := func(i int) <-chan string {
		cmd := in(i, "tallyd", "--bind", "0.0.0.0", "--bootstrap-expect", "3", "--node-id", nodes[i],
			"--data-dir", filepath.Join(work, nodes[i]), "--discovery-port", "0", "--bootstrap-secret-file", secret)
		logFile, err := os.OpenFile(filepath.Join(work, nodes[i]+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			t.Fatal(err)
		}
		defer logFile.Close()
		cmd.Stderr = logFile
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		procs[i] = cmd
		lines := make(chan string, 64)
		go func() {
			defer close(lines)
			sc := bufio.NewScanner(stdout)
			for sc.Scan() {
				lines <- sc.Text()
			}
		}()
		return lines
	}
	// serving waits until node i serves and returns how it became a member.
	serving := func(i int, lines <-chan string) string {
		t.Helper()
		deadline := time.After(3 * time.Minute)
		for {
			select {
			case line, ok := <-lines:
				if !ok {
					log, _ := os.ReadFile(filepath.Join(work, nodes[i]+".log"))
					t.Fatalf("%s exited: %s", nodes[i], lastLines(string(log), 10))
				}
				if rest, ok := strings.CutPrefix(line, "Cluster: node "+nodes[i]+", raft on 10.79.0."); ok {
					_, how, _ := strings.Cut(rest, " (")
					return strings.TrimSuffix(how, ")")
				}
			case <-deadline:
				log, _ := os.ReadFile(filepath.Join(work, nodes[i]+".log"))
				t.Fatalf("%s does not serve: %s", nodes[i], lastLines(string(log), 10))
			}
		}
	}
	ctl := func(i int, args ...string) (string, error) {
		out, err := in(i, "tallyctl", append([]string{"--server", "https://127.0.0.1:8443", "--insecure"}, args...)...).CombinedOutput()
		return string(out), err
	}
	healthy := func(i int) (bool, string) {
		var st clusterStatusJSON
		out, err := ctl(i, "--json", "cluster", "status")
		if err == nil {
			err = json.Unmarshal([]byte(out), &st)
		}
		reachable := 0
		for _, m := range st.Members {
			if m.Reachable {
				reachable++
			}
		}
		return err == nil && st.Healthy && st.Leader != "" && len(st.Members) == 3 && reachable == 3, out
	}

	stranger := in(3, "tallyd", "--bind", "0.0.0.0", "--bootstrap-expect", "3", "--node-id", "a0",
		"--data-dir", filepath.Join(work, "a0"), "--discovery-port", "0", "--bootstrap-secret-file", strangerSecret)
	if err := stranger.Start(); err != nil {
		t.Fatal(err)
	}
	procs[3] = stranger
	var lines [3]<-chan string
	for i := range nodes {
		lines[i] = start(i)
	}
	for i := range nodes {
		if how := serving(i, lines[i]); how != "formed with 3 nodes by mDNS" {
			t.Fatalf("%s: %q", nodes[i], how)
		}
	}
	for i := range nodes {
		waitUntil(t, nodes[i]+" sees a healthy cluster of three", func() (bool, string) { return healthy(i) })
	}
	// f1 has the lowest node ID of the founders: it made the cluster CA;
	// the stranger, lower still, is no member and got no certificate.
	for i, n := range nodes {
		_, err := os.Stat(filepath.Join(work, n, clusterDir, caKeyFile))
		if (err == nil) != (i == 0) {
			t.Fatalf("the CA key on %s: %v", n, err)
		}
	}

	if _, err := os.Stat(filepath.Join(work, "a0", clusterDir, clustertls.NodeFile)); err == nil {
		t.Fatal("the stranger has a node certificate")
	}

	// A write on a follower reaches the others.
	out, err := ctl(0, "--json", "cluster", "status")
	var st clusterStatusJSON
	if err != nil || json.Unmarshal([]byte(out), &st) != nil {
		t.Fatalf("status: %v\n%s", err, out)
	}
	follower := slices.IndexFunc(nodes, func(n string) bool { return n != st.Leader })
	if out, err := ctl(follower, "cluster", "token", "--description", "made-on-a-follower"); err != nil {
		t.Fatalf("cluster token on %s: %v\n%s", nodes[follower], err, out)
	}
	other := (follower + 1) % 3
	if out, err := ctl(other, "cluster", "tokens"); err != nil || !strings.Contains(out, "made-on-a-follower") {
		t.Fatalf("cluster tokens on %s: %v\n%s", nodes[other], err, out)
	}

	// f3, not the seed, dies and comes back by its saved identity.
	procs[2].Process.Kill()
	procs[2].Wait()
	delete(procs, 2)
	if how := serving(2, start(2)); how != "member" {
		t.Fatalf("f3 after a restart: %q", how)
	}
	waitUntil(t, "f3 back in a healthy cluster of three", func() (bool, string) { return healthy(2) })
	if ok, out := healthy(0); !ok {
		t.Fatalf("f1 after f3's restart:\n%s", out)
	}
}
