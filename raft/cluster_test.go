package raft

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tallyhq/tally/core"
	"github.com/tallyhq/tally/raft/clustertls"
)

// testCA is a cluster CA for tests.
type testCA struct{ ca *clustertls.CA }

func newTestCA(t testing.TB) testCA {
	t.Helper()
	ca, err := clustertls.NewCA("test", time.Now(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return testCA{ca}
}

// identity issues a node certificate for id.
func (c testCA) identity(t testing.TB, id string) *clustertls.Identity {
	t.Helper()
	key, err := clustertls.NewNodeKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	csr, err := clustertls.NodeCSR(key, id, core.Level, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := c.ca.SignNode(csr, id, time.Now(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ident, err := clustertls.NewIdentity(c.ca.CertDER, cert, key)
	if err != nil {
		t.Fatal(err)
	}
	return ident
}

// testCluster is a set of nodes on loopback TCP under mutual TLS.
type testCluster struct {
	t      testing.TB
	ca     testCA
	dirs   map[string]string
	addrs  map[string]string
	idents map[string]*clustertls.Identity

	// logger, when set, receives every node's log; deadServerTimeout is
	// given to every node.
	logger            *slog.Logger
	deadServerTimeout time.Duration
	// dial, when set, gives each node its Dial.
	dial func(node string) func(string, time.Duration) (net.Conn, error)
	// levels, when set, is the state level a node says it applies.
	levels map[string]int

	mu    sync.Mutex
	nodes map[string]*Node
}

func newTestCluster(t testing.TB) *testCluster {
	return &testCluster{t: t, ca: newTestCA(t), dirs: map[string]string{}, addrs: map[string]string{},
		idents: map[string]*clustertls.Identity{}, nodes: map[string]*Node{}}
}

// start opens node id; bootstrap, when not nil, is its bootstrap
// configuration (used only on first start). The node keeps its address
// and data directory across restarts.
func (c *testCluster) start(id string, bootstrap []string) *Node {
	c.t.Helper()
	if c.dirs[id] == "" {
		c.dirs[id] = c.t.TempDir()
		if c.idents[id] == nil {
			c.idents[id] = c.ca.identity(c.t, id)
		}
	}
	addr := c.addrs[id]
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	var ln net.Listener
	var err error
	for range 100 { // the old port may linger briefly after a close
		if ln, err = net.Listen("tcp", addr); err == nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		c.t.Fatal(err)
	}
	c.addrs[id] = ln.Addr().String()
	var members []Member
	for _, b := range bootstrap {
		members = append(members, Member{ID: b, Address: c.addrOf(b)})
	}
	ident := c.idents[id]
	var dialer func(string, time.Duration) (net.Conn, error)
	if c.dial != nil {
		dialer = c.dial(id)
	}
	n, err := Open(Config{DataDir: c.dirs[id], NodeID: id, TickInterval: time.Hour, Logger: c.logger, Cluster: &ClusterConfig{
		Listener: ln, Advertise: ln.Addr().String(), ServerTLS: ident.ServerTLS(), ClientTLS: ident.ClientTLS(),
		Bootstrap: members, ForwardWait: 30 * time.Second, Dial: dialer,
		HeartbeatTimeout: 200 * time.Millisecond, ElectionTimeout: 200 * time.Millisecond, LeaderLeaseTimeout: 100 * time.Millisecond,
		DeadServerTimeout: c.deadServerTimeout,
	}, level: c.levels[id]})
	if err != nil {
		c.t.Fatalf("open %s: %v", id, err)
	}
	c.mu.Lock()
	c.nodes[id] = n
	c.mu.Unlock()
	c.t.Cleanup(func() { n.Close() })
	return n
}

// addrOf returns a node's peer address, reserving a port for one not
// started yet.
func (c *testCluster) addrOf(id string) string {
	c.t.Helper()
	if a := c.addrs[id]; a != "" {
		return a
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		c.t.Fatal(err)
	}
	c.addrs[id] = ln.Addr().String()
	ln.Close()
	return c.addrs[id]
}

// kill stops a node as a crash would: no leadership hand-over.
func (c *testCluster) kill(id string) {
	c.mu.Lock()
	n := c.nodes[id]
	delete(c.nodes, id)
	c.mu.Unlock()
	n.crashed.Store(true)
	n.Close()
}

// stop stops a node gracefully.
func (c *testCluster) stop(id string) {
	c.mu.Lock()
	n := c.nodes[id]
	delete(c.nodes, id)
	c.mu.Unlock()
	n.Close()
}

// leader waits for a leader among the running nodes and returns its ID.
func (c *testCluster) leader() string {
	c.t.Helper()
	for range 3000 {
		c.mu.Lock()
		for id, n := range c.nodes {
			if n.isLeader() {
				c.mu.Unlock()
				return id
			}
		}
		c.mu.Unlock()
		time.Sleep(10 * time.Millisecond)
	}
	c.t.Fatal("no leader was elected")
	return ""
}

// running lists the nodes that run, in a fixed order.
func (c *testCluster) running() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var ids []string
	for id := range c.nodes {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

func (c *testCluster) node(id string) *Node {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nodes[id]
}

// followers returns the running nodes that are not the leader.
func (c *testCluster) followers(leader string) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for id := range c.nodes {
		if id != leader {
			out = append(out, id)
		}
	}
	return out
}

var three = []string{"n1", "n2", "n3"}

// TestClusterForwardsAndReadsLinearizably: three nodes bootstrapped
// together elect a leader; writes on followers are forwarded, refusals keep
// their sentinels, and a read on any node sees every write acknowledged on
// any other.
func TestClusterForwardsAndReadsLinearizably(t *testing.T) {
	c := newTestCluster(t)
	for _, id := range three {
		c.start(id, three)
	}
	leader := c.leader()
	followers := c.followers(leader)
	f0, f1 := c.node(followers[0]), c.node(followers[1])
	apply(t, f0, rights(100))
	for i := range 20 {
		d := device(t, devName(i))
		writer, reader := f0, f1
		if i%2 == 1 {
			writer, reader = f1, c.node(leader)
		}
		apply(t, writer, hello(d))
		if res := apply(t, writer, checkout(d, "cad", 1)); res.Grant.Count != 1 {
			t.Fatalf("checkout %d on a follower: %+v", i, res)
		}
		var used int64
		err := reader.Read(context.Background(), func(s *core.State) error {
			for _, f := range s.Features() {
				if f.Name == "cad" {
					used = f.Used
				}
			}
			return nil
		})
		if err != nil || used != int64(i+1) {
			t.Fatalf("read after write %d: used %d, %v", i, used, err)
		}
	}
	// A refusal on a follower is the leader's, sentinel and all.
	_, err := f1.Apply(context.Background(), &core.DropDevice{Device: device(t, "no-such-device")})
	if !errors.Is(err, core.ErrUnknownDevice) || errors.Is(err, core.ErrNotApplied) {
		t.Fatalf("drop of an unknown device on a follower: %v", err)
	}
	// Every node holds the same state.
	want := readView(t, c.node(leader))
	for _, id := range followers {
		if got := readView(t, c.node(id)); got != want {
			t.Fatalf("%s differs from the leader:\n%s\nleader:\n%s", id, got, want)
		}
	}
}

// TestClusterSurvivesLeaderLoss: with the leader gone, the survivors elect
// another and serve; every acknowledged lease is there; the old leader
// comes back and catches up.
func TestClusterSurvivesLeaderLoss(t *testing.T) {
	c := newTestCluster(t)
	for _, id := range three {
		c.start(id, three)
	}
	old := c.leader()
	apply(t, c.node(old), rights(100))
	for i := range 10 {
		apply(t, c.node(old), hello(device(t, devName(i))))
		apply(t, c.node(old), checkout(device(t, devName(i)), "cad", 2))
	}
	c.kill(old)
	survivor := c.node(c.followers(old)[0])
	for i := 10; i < 20; i++ {
		apply(t, survivor, hello(device(t, devName(i))))
		if res := apply(t, survivor, checkout(device(t, devName(i)), "cad", 2)); res.Grant.Count != 2 {
			t.Fatalf("checkout after failover: %+v", res)
		}
	}
	want := readView(t, survivor)
	if !strings.Contains(want, devName(0)) || !strings.Contains(want, devName(19)) {
		t.Fatalf("leases lost:\n%s", want)
	}
	back := c.start(old, nil)
	for attempt := 0; ; attempt++ {
		if got := readView(t, back); got == want {
			break
		} else if attempt == 1000 {
			t.Fatalf("the restarted node did not catch up:\n%s", got)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestClusterMembership: nodes that start empty are added one by one, from
// the leader and from a follower; a node is removed; removing the last
// voter or a stranger is refused.
func TestClusterMembership(t *testing.T) {
	c := newTestCluster(t)
	first := c.start("n1", []string{"n1"})
	c.leader()
	c.start("n2", nil)
	c.start("n3", nil)
	ctx := context.Background()
	if err := first.AddVoter(ctx, "n2", c.addrOf("n2")); err != nil {
		t.Fatalf("add n2: %v", err)
	}
	// n2 follows now; n3 is added through it.
	for c.node("n2").Status().Leader == "" {
		time.Sleep(10 * time.Millisecond)
	}
	if err := c.node("n2").AddVoter(ctx, "n3", c.addrOf("n3")); err != nil {
		t.Fatalf("add n3 through a follower: %v", err)
	}
	apply(t, c.node("n3"), rights(5))
	members, err := c.node("n3").Members()
	if err != nil || len(members) != 3 {
		t.Fatalf("members %+v, %v", members, err)
	}
	// Refused on the leader and, through a forward, on a follower: both
	// keep core's sentinel, which the API answers 400 invalid_command.
	leader := c.leader()
	for _, n := range []string{leader, c.followers(leader)[0]} {
		if err := c.node(n).RemoveServer(ctx, "n9"); !errors.Is(err, ErrInvalidMember) || !errors.Is(err, core.ErrInvalidCommand) {
			t.Fatalf("removing a stranger on %s: %v", n, err)
		}
	}
	if err := c.node("n3").RemoveServer(ctx, "n2"); err != nil {
		t.Fatalf("remove n2: %v", err)
	}
	if members, _ := first.Members(); len(members) != 2 {
		t.Fatalf("after removal: %+v", members)
	}
	c.kill("n2")
	apply(t, c.node("n3"), hello(device(t, "after-removal")))
}

// TestRemoveLastVoter: the one member of a cluster cannot remove itself;
// the refusal wraps core.ErrInvalidCommand (400 invalid_command in the
// API, not a 500) and the node goes on serving.
func TestRemoveLastVoter(t *testing.T) {
	c := newTestCluster(t)
	only := c.start("n1", []string{"n1"})
	c.leader()
	err := only.RemoveServer(context.Background(), "n1")
	if !errors.Is(err, ErrInvalidMember) || !errors.Is(err, core.ErrInvalidCommand) || !strings.Contains(err.Error(), "last voter") {
		t.Fatalf("removing the last voter: %v", err)
	}
	if members, err := only.Members(); err != nil || len(members) != 1 || !members[0].Voter {
		t.Fatalf("members after the refusal: %+v, %v", members, err)
	}
	apply(t, only, rights(1))
}

// TestClusterRefusesForeignCertificates: a peer whose certificate is not
// from the cluster CA cannot open a raft or forwarding connection.
func TestClusterRefusesForeignCertificates(t *testing.T) {
	c := newTestCluster(t)
	n := c.start("n1", []string{"n1"})
	c.leader()
	foreign := newTestCA(t).identity(t, "n1")
	m, err := newMux(nil, "127.0.0.1:1", foreign.ServerTLS(), foreign.ClientTLS())
	if err != nil {
		t.Fatal(err)
	}
	for _, proto := range []byte{protoRaft, protoForward} {
		conn, err := m.dial(c.addrOf("n1"), proto, 5*time.Second)
		if err == nil {
			// TLS 1.3 reports a refused client certificate on the first
			// read.
			conn.SetReadDeadline(time.Now().Add(5 * time.Second))
			_, err = conn.Read(make([]byte, 1))
			conn.Close()
		}
		if err == nil {
			t.Fatalf("protocol %c: a foreign certificate was let in", proto)
		}
	}
	// The node still serves.
	apply(t, n, rights(1))
}

// TestClusterConfigRefused: unusable cluster configurations are refused
// before anything starts.
func TestClusterConfigRefused(t *testing.T) {
	ident := newTestCA(t).identity(t, "n1")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	for name, cc := range map[string]ClusterConfig{
		"no TLS":            {Listener: ln, Advertise: ln.Addr().String()},
		"unspecified":       {Listener: ln, Advertise: "0.0.0.0:61616", ServerTLS: ident.ServerTLS(), ClientTLS: ident.ClientTLS()},
		"bootstrap without": {Listener: ln, Advertise: ln.Addr().String(), ServerTLS: ident.ServerTLS(), ClientTLS: ident.ClientTLS(), Bootstrap: []Member{{ID: "n2", Address: "127.0.0.1:1"}}},
	} {
		t.Run(name, func(t *testing.T) {
			cc := cc
			_, err := Open(Config{DataDir: filepath.Join(t.TempDir(), "d"), NodeID: "n1", Cluster: &cc})
			if !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("%s: %v", name, fmt.Sprint(err))
			}
		})
	}
}

// TestClusterGroupCommitAcrossNodes: many concurrent checkouts on every
// node share log entries on the leader, and none is lost or doubled.
func TestClusterGroupCommitAcrossNodes(t *testing.T) {
	c := newTestCluster(t)
	for _, id := range three {
		c.start(id, three)
	}
	leader := c.node(c.leader())
	apply(t, leader, rights(1000))
	const perNode = 100
	before := metric(t, leader, "tally_raft_batches_applied_total")
	var wg sync.WaitGroup
	errs := make(chan error, 3*perNode)
	for k, id := range three {
		n := c.node(id)
		for i := range perNode {
			wg.Add(1)
			go func() {
				defer wg.Done()
				d := device(t, devName(k*perNode+i))
				if _, err := n.Apply(context.Background(), hello(d)); err != nil {
					errs <- err
					return
				}
				res, err := n.Apply(context.Background(), checkout(d, "cad", 1))
				if err == nil && res.Grant.Count != 1 {
					err = fmt.Errorf("checkout: %+v", res)
				}
				if err != nil {
					errs <- err
				}
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	batches := metric(t, leader, "tally_raft_batches_applied_total") - before
	if batches >= 2*3*perNode {
		t.Fatalf("%v log entries for %d requests: no group commit", batches, 2*3*perNode)
	}
	err := leader.Read(context.Background(), func(s *core.State) error {
		for _, f := range s.Features() {
			if f.Name == "cad" && f.Used != 3*perNode {
				return fmt.Errorf("cad used %d, want %d", f.Used, 3*perNode)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// joinRequest makes a node's key and the proven request to join as id.
func joinRequest(t testing.TB, token clustertls.JoinToken, id, address string) (*ecdsa.PrivateKey, []byte, []byte) {
	t.Helper()
	return joinRequestAt(t, token, id, address, core.Level)
}

// joinRequestAt is joinRequest from a node whose release applies up to
// state level level.
func joinRequestAt(t testing.TB, token clustertls.JoinToken, id, address string, level int) (*ecdsa.PrivateKey, []byte, []byte) {
	t.Helper()
	key, err := clustertls.NewNodeKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	csr, err := clustertls.NodeCSR(key, id, level, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	req, err := json.Marshal(JoinRequest{Token: token.ID, NodeID: id, Address: address, CSR: csr})
	if err != nil {
		t.Fatal(err)
	}
	return key, req, clustertls.JoinProof(token.Verifier(), clustertls.JoinRequestContext, req)
}

// TestClusterJoinWithToken: a member admits a node that proves it holds a
// join token: the node gets its certificate from the replicated CA, is
// added as a voter and serves; the token admits nobody else, and a request
// without the token's proof, from a node of an older release than the
// state's level, or an answer not proven with the token is refused.
func TestClusterJoinWithToken(t *testing.T) {
	c := newTestCluster(t)
	n1 := c.start("n1", []string{"n1"})
	c.leader()
	certPEM, keyPEM, err := c.ca.ca.MarshalPEM()
	if err != nil {
		t.Fatal(err)
	}
	apply(t, n1, &core.SetClusterCA{CertPEM: certPEM, KeyPEM: keyPEM})
	token, err := clustertls.NewJoinToken(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	apply(t, n1, &core.CreateJoinToken{ID: token.ID, Verifier: token.Verifier(), Expires: time.Now().Add(time.Hour)})
	ctx := context.Background()

	// Without the secret: refused as an unknown token, nothing spent.
	other, _ := clustertls.NewJoinToken(rand.Reader)
	_, forged, _ := joinRequest(t, token, "n2", c.addrOf("n2"))
	if _, _, err := n1.Admit(ctx, forged, clustertls.JoinProof(other.Verifier(), clustertls.JoinRequestContext, forged), "test"); !errors.Is(err, core.ErrUnknownJoinToken) {
		t.Fatalf("a request proven with another token: %v", err)
	}

	// A node of an older release than the state's level: refused, with
	// the token kept for when it is upgraded.
	waitLevel(t, n1, core.Level)
	_, old, oldProof := joinRequestAt(t, token, "n2", c.addrOf("n2"), core.Level-1)
	if _, _, err := n1.Admit(ctx, old, oldProof, "test"); !errors.Is(err, core.ErrJoinLevel) || !strings.Contains(err.Error(), fmt.Sprintf("state level %d", core.Level-1)) {
		t.Fatalf("a node of state level %d: %v", core.Level-1, err)
	}

	key, req, proof := joinRequest(t, token, "n2", c.addrOf("n2"))
	resp, respProof, err := n1.Admit(ctx, req, proof, "test")
	if err != nil {
		t.Fatalf("admit: %v", err)
	}
	if _, err := CheckJoinResponse(other, req, resp, respProof); !errors.Is(err, ErrJoin) {
		t.Fatalf("an answer checked with another token: %v", err)
	}
	if _, err := CheckJoinResponse(token, forged, resp, respProof); !errors.Is(err, ErrJoin) {
		t.Fatalf("an answer to another request: %v", err)
	}
	jr, err := CheckJoinResponse(token, req, resp, respProof)
	if err != nil {
		t.Fatal(err)
	}
	ident, err := clustertls.NewIdentity(jr.CA, jr.Certificate, key)
	if err != nil {
		t.Fatalf("identity from the answer: %v", err)
	}
	c.idents["n2"] = ident
	n2 := c.start("n2", nil)
	for attempt := 0; ; attempt++ {
		if members, _ := n2.Members(); len(members) == 2 {
			break
		} else if attempt == 3000 {
			t.Fatalf("n2 never became a member: %+v", members)
		}
		time.Sleep(10 * time.Millisecond)
	}
	apply(t, n2, rights(3))
	if rec := waitMemberChanges(t, n1, 1)[0]; rec.User != "cluster" || rec.Detail != "added node n2 as a voter at "+c.addrOf("n2") {
		t.Fatalf("audit record %+v", rec)
	}

	// The token is spent: another node is refused, the same node's retry
	// is answered.
	_, req3, proof3 := joinRequest(t, token, "n3", "127.0.0.1:1")
	if _, _, err := n2.Admit(ctx, req3, proof3, "test"); !errors.Is(err, core.ErrJoinTokenUsed) {
		t.Fatalf("a second node on one token: %v", err)
	}
	if _, _, err := n2.Admit(ctx, req, proof, "test"); err != nil {
		t.Fatalf("the admitted node asking again: %v", err)
	}
	status, err := n1.ClusterMembers(ctx)
	if err != nil || len(status) != 2 {
		t.Fatalf("status %+v, %v", status, err)
	}
	for _, m := range status {
		if !m.Reachable || m.AppliedIndex == 0 || (m.State != "Leader" && m.State != "Follower") {
			t.Fatalf("member %+v", m)
		}
	}
}

// TestClusterMetrics: the cluster's shape and a follower's contact with
// the leader are in the metrics.
func TestClusterMetrics(t *testing.T) {
	c := newTestCluster(t)
	for _, id := range three {
		c.start(id, three)
	}
	leader := c.leader()
	apply(t, c.node(leader), rights(1))
	if v := metric(t, c.node(leader), "tally_raft_voters"); v != 3 {
		t.Fatalf("voters %v", v)
	}
	follower := c.node(c.followers(leader)[0])
	if v := metric(t, follower, "tally_raft_leader"); v != 0 {
		t.Fatalf("a follower says it leads")
	}
	if v := metric(t, follower, "tally_raft_last_contact_seconds"); v < 0 {
		t.Fatalf("a follower that replicated has never heard from the leader: %v", v)
	}
	if v := metric(t, follower, "tally_raft_term"); v < 1 {
		t.Fatalf("term %v", v)
	}
}

// TestDeadServersRemovedWhileSafe: in a cluster of five, dead servers are
// removed one at a time until three voters are left; the third dead
// server is kept, since removing it would leave fewer than three.
func TestDeadServersRemovedWhileSafe(t *testing.T) {
	c := newTestCluster(t)
	c.deadServerTimeout = 500 * time.Millisecond
	five := []string{"n1", "n2", "n3", "n4", "n5"}
	for _, id := range five {
		c.start(id, five)
	}
	leader := c.leader()
	apply(t, c.node(leader), rights(1))
	waitLevel(t, c.node(leader), core.Level) // membership changes are recorded
	voters := func() int {
		members, err := c.node(c.leader()).Members()
		if err != nil {
			return -1
		}
		return len(members)
	}
	dead := c.followers(leader)
	slices.Sort(dead)
	for i, want := range []int{4, 3} {
		c.kill(dead[i])
		for attempt := 0; voters() != want; attempt++ {
			if attempt == 3000 {
				t.Fatalf("after %s died: %d voters, want %d", dead[i], voters(), want)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	// Three voters, one of them dead: kept, and the two others serve.
	c.kill(dead[2])
	time.Sleep(3 * c.deadServerTimeout) // a check that must not happen: no bound to wait for
	if v := voters(); v != 3 {
		t.Fatalf("%d voters after a third death, want 3 kept", v)
	}
	apply(t, c.node(c.running()[0]), hello(device(t, "still-serving")))

	// Each removal is in the audit log, by the cluster, with its reason.
	changes := waitMemberChanges(t, c.node(c.running()[0]), 2)
	for i, rec := range changes {
		want := "removed node " + dead[i] + " from the cluster (it was at " + c.addrOf(dead[i]) + "): a dead server: no answer for 500ms"
		if rec.User != "cluster" || rec.Detail != want {
			t.Fatalf("audit record %+v, want %q", rec, want)
		}
	}
}

// waitMemberChanges waits, bounded, until n's audit log holds at least
// want membership changes, and returns them.
func waitMemberChanges(t testing.TB, n *Node, want int) []core.AuditRecord {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var changes []core.AuditRecord
		if err := n.Read(context.Background(), func(s *core.State) error {
			for _, rec := range s.Audit(0, 10_000) {
				if rec.Action == "memberChanged" {
					changes = append(changes, rec)
				}
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if len(changes) >= want {
			return changes
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d membership changes in the audit log, want %d: %+v", len(changes), want, changes)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestGracefulStopHandsOverLeadership: a leader that stops gracefully
// hands leadership to another voter first.
func TestGracefulStopHandsOverLeadership(t *testing.T) {
	var logs syncBuffer
	c := newTestCluster(t)
	c.logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	for _, id := range three {
		c.start(id, three)
	}
	old := c.leader()
	// The new leader's own first work (raising the state level) is done,
	// so that the hand-over is all that happens when it stops.
	waitLevel(t, c.node(old), core.Level)
	apply(t, c.node(old), rights(1))
	c.stop(old)
	if strings.Contains(logs.String(), "leadership not handed over") {
		t.Fatalf("no hand-over:\n%s", logs.String())
	}
	if !strings.Contains(logs.String(), "leadership handed over before stopping") {
		t.Fatalf("no leadership transfer:\n%s", logs.String())
	}
	apply(t, c.node(c.leader()), hello(device(t, "after-handover")))
}

// syncBuffer is a bytes.Buffer safe for concurrent writers.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestClusterNodeServesFromItsFirstMoment: a node of a cluster of one
// answers reads and writes from the moment Open returns, through its
// election, and again after a restart.
func TestClusterNodeServesFromItsFirstMoment(t *testing.T) {
	c := newTestCluster(t)
	for round := range 3 {
		n := c.start("n1", []string{"n1"})
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		err := n.Read(ctx, func(*core.State) error { return nil })
		cancel()
		if err != nil {
			t.Fatalf("round %d: read right after Open: %v", round, err)
		}
		apply(t, n, hello(device(t, fmt.Sprintf("round-%d", round))))
		c.stop("n1")
	}
}
