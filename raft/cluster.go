package raft

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"slices"
	"sync"
	"time"

	hraft "github.com/hashicorp/raft"

	"github.com/tallyhq/tally/core"
)

// ClusterConfig makes a Node a member of a cluster of nodes talking over
// the network (DESIGN.md, "A cluster of nodes"). Without it a node is a
// one-member cluster on an in-memory transport.
type ClusterConfig struct {
	// Listener accepts peer connections (TCP 61616); the node closes it.
	Listener net.Listener
	// Advertise is the host:port peers dial to reach this node. It is the
	// node's raft address and must be reachable, not 0.0.0.0.
	Advertise string
	// ServerTLS and ClientTLS make every peer connection mutual TLS from
	// the cluster CA (clustertls.Identity).
	ServerTLS, ClientTLS *tls.Config
	// Bootstrap, when the node has no raft state yet, is the configuration
	// to bootstrap: every voter of the new cluster, this node among them.
	// Empty: the node waits to be added by a member (AddVoter).
	Bootstrap []Member
	// ForwardWait bounds how long a forwarded request waits for a leader
	// during an election. Default 10s.
	ForwardWait time.Duration
	// DeadServerTimeout, when above zero, removes a member the leader has
	// not heard from for that long, as long as the cluster stays safe
	// (deadservers.go). MinVoters is the fewest voters automatic removal
	// leaves; default 3.
	DeadServerTimeout time.Duration
	MinVoters         int
	// Dial opens a TCP connection to a peer; default net.Dialer. Tests
	// put a faulty network here.
	Dial func(address string, timeout time.Duration) (net.Conn, error)
	// Timeouts of raft. Defaults: heartbeat and election 500ms, leader
	// lease 250ms.
	HeartbeatTimeout, ElectionTimeout, LeaderLeaseTimeout time.Duration
}

// Member is a server of the cluster configuration.
type Member struct {
	ID      string `json:"id"`
	Address string `json:"address"`
	// Voter is false for a server that replicates but does not vote.
	Voter bool `json:"voter"`
}

// ErrInvalidMember says a membership change names no node, an unknown one,
// or would leave the cluster without a voter. It wraps
// core.ErrInvalidCommand, so that a caller that knows only core (the API)
// answers it as the refused request it is, on the leader and, since both
// sentinels cross a forward, on a follower.
var ErrInvalidMember error = invalidMember{}

// invalidMember is ErrInvalidMember: its own text, and core's sentinel
// beneath it.
type invalidMember struct{}

func (invalidMember) Error() string { return "invalid membership change" }
func (invalidMember) Unwrap() error { return core.ErrInvalidCommand }

// Cluster defaults.
const (
	defaultForwardWait = 10 * time.Second
	defaultMinVoters   = 3
	// leadershipTransferWait bounds handing leadership over at Close.
	leadershipTransferWait = 5 * time.Second
	clusterHeartbeat       = 500 * time.Millisecond
	clusterElection        = 500 * time.Millisecond
	clusterLeaderLease     = 250 * time.Millisecond
	membershipTimeout      = 10 * time.Second
	networkTransportPool   = 3
	networkTransportTimout = 10 * time.Second
)

func (c *ClusterConfig) withDefaults(nodeID string) error {
	if c.Listener == nil || c.ServerTLS == nil || c.ClientTLS == nil {
		return fmt.Errorf("%w: a cluster node needs a listener and TLS configurations", ErrInvalidConfig)
	}
	if c.ForwardWait <= 0 {
		c.ForwardWait = defaultForwardWait
	}
	if c.HeartbeatTimeout <= 0 {
		c.HeartbeatTimeout = clusterHeartbeat
	}
	if c.ElectionTimeout <= 0 {
		c.ElectionTimeout = clusterElection
	}
	if c.LeaderLeaseTimeout <= 0 {
		c.LeaderLeaseTimeout = clusterLeaderLease
	}
	if c.MinVoters <= 0 {
		c.MinVoters = defaultMinVoters
	}
	if len(c.Bootstrap) > 0 {
		seen := map[string]bool{}
		for _, m := range c.Bootstrap {
			if m.ID == "" || m.Address == "" || seen[m.ID] {
				return fmt.Errorf("%w: bootstrap member %+v", ErrInvalidConfig, m)
			}
			seen[m.ID] = true
		}
		if !seen[nodeID] {
			return fmt.Errorf("%w: the bootstrap configuration does not name this node %s", ErrInvalidConfig, nodeID)
		}
	}
	return nil
}

// isLeader reports whether this node is raft's leader now.
func (n *Node) isLeader() bool { return n.raft.State() == hraft.Leader }

// readIndex is the leader's side of a read on a follower: once its term's
// barrier is applied and it is still the leader, every write acknowledged
// so far is at or below its applied index.
func (n *Node) readIndex(ctx context.Context) (uint64, error) {
	t := n.leaderTerm(ctx)
	if t == nil {
		return 0, notLeader()
	}
	select {
	case <-t.ready:
	case <-t.done:
		return 0, notLeader()
	case <-n.closing:
		return 0, errClosed()
	case <-ctx.Done():
		return 0, fmt.Errorf("%w: %w", core.ErrNotApplied, ctx.Err())
	}
	if err := n.wait(n.raft.VerifyLeader()); err != nil {
		return 0, raftError(err)
	}
	return n.fsm.applied.Load(), nil
}

// readFollower serves Read on a follower: it gets a read index from the
// leader and waits until it has applied that much.
func (n *Node) readFollower(ctx context.Context, fn func(*core.State) error) error {
	out, err := n.forwardCall(ctx, opReadIndex, nil)
	if errors.Is(err, errBecameLeader) {
		return n.Read(ctx, fn)
	}
	if err != nil {
		return err
	}
	if len(out) != 8 {
		return fmt.Errorf("%w: read index of %d bytes", core.ErrNotApplied, len(out))
	}
	index := binary.BigEndian.Uint64(out)
	if err := n.fsm.waitApplied(ctx, index); err != nil {
		return fmt.Errorf("%w: catching up to index %d: %w", core.ErrNotApplied, index, err)
	}
	return n.fsm.read(fn)
}

// applyForward serves Apply on a follower.
func (n *Node) applyForward(ctx context.Context, c core.Command) (core.Result, error) {
	// The leader stamps the request anew; the ID only makes it decode.
	data, err := core.EncodeRequest(core.Request{ID: core.RequestID{Session: n.session, Seq: n.fwdSeq.Add(1)}, Command: c})
	if err != nil {
		return core.Result{}, err
	}
	out, err := n.forwardCall(ctx, opApply, data)
	if errors.Is(err, errBecameLeader) {
		return n.applyLocal(ctx, c)
	}
	if err != nil {
		return core.Result{}, err
	}
	res, err := core.DecodeResult(out)
	if err != nil {
		return core.Result{}, fmt.Errorf("%w: unreadable result from the leader: %w", core.ErrNotApplied, err)
	}
	return res, nil
}

// AddVoter adds a node to the cluster as a voter, or changes its address;
// on a follower the leader does it.
func (n *Node) AddVoter(ctx context.Context, id, address string) error {
	m := member{ID: id, Address: address}
	if id == "" || address == "" {
		return fmt.Errorf("%w: a voter needs an ID and an address", ErrInvalidMember)
	}
	if n.fwd == nil || n.isLeader() {
		return n.addVoterLocal(ctx, m)
	}
	return n.membershipForward(ctx, opAddVoter, m)
}

// RemoveServer removes a node from the cluster; on a follower the leader
// does it. Removing a stranger or the last voter is refused
// (ErrInvalidMember, which wraps core.ErrInvalidCommand).
func (n *Node) RemoveServer(ctx context.Context, id string) error {
	if id == "" {
		return fmt.Errorf("%w: no node ID", ErrInvalidMember)
	}
	if n.fwd == nil || n.isLeader() {
		return n.removeLocal(ctx, id)
	}
	return n.membershipForward(ctx, opRemove, member{ID: id})
}

func (n *Node) membershipForward(ctx context.Context, op byte, m member) error {
	b, _ := json.Marshal(m)
	_, err := n.forwardCall(ctx, op, b)
	if errors.Is(err, errBecameLeader) {
		if op == opAddVoter {
			return n.addVoterLocal(ctx, m)
		}
		return n.removeLocal(ctx, m.ID)
	}
	return err
}

func (n *Node) addVoterLocal(ctx context.Context, m member) error {
	if m.ID == "" || m.Address == "" {
		return fmt.Errorf("%w: a voter needs an ID and an address", ErrInvalidMember)
	}
	if err := n.wait(n.raft.AddVoter(hraft.ServerID(m.ID), hraft.ServerAddress(m.Address), 0, timeoutOf(ctx))); err != nil {
		return raftError(err)
	}
	return nil
}

func (n *Node) removeLocal(ctx context.Context, id string) error {
	f := n.raft.GetConfiguration()
	if err := n.wait(f); err != nil {
		return raftError(err)
	}
	servers := f.Configuration().Servers
	i := slices.IndexFunc(servers, func(s hraft.Server) bool { return string(s.ID) == id })
	if i < 0 {
		return fmt.Errorf("%w: %s is not a member", ErrInvalidMember, id)
	}
	voters := 0
	for _, s := range servers {
		if s.Suffrage == hraft.Voter {
			voters++
		}
	}
	if servers[i].Suffrage == hraft.Voter && voters == 1 {
		return fmt.Errorf("%w: %s is the last voter", ErrInvalidMember, id)
	}
	if err := n.wait(n.raft.RemoveServer(hraft.ServerID(id), 0, timeoutOf(ctx))); err != nil {
		return raftError(err)
	}
	return nil
}

// recordMemberChange writes a change the cluster made on its own into the
// audit log (core.MemberChanged, actor "cluster"), once the state is at
// the level that records them. A record that cannot be written is logged:
// the change itself has happened.
func (n *Node) recordMemberChange(c *core.MemberChanged) {
	level := 0
	n.fsm.read(func(s *core.State) error { level = s.Level(); return nil })
	if level < core.MemberChangeLevel {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), membershipTimeout)
	defer cancel()
	if _, err := n.Apply(ctx, &core.Audited{Actor: core.Actor{User: "cluster"}, Command: c}); err != nil {
		n.log.Error("membership change not recorded in the audit log", "change", c.Change, "node", c.Node, "err", err)
	}
}

// timeoutOf turns ctx's deadline into raft's enqueue timeout.
func timeoutOf(ctx context.Context) time.Duration {
	if dl, ok := ctx.Deadline(); ok {
		return max(time.Until(dl), time.Millisecond)
	}
	return membershipTimeout
}

// Members returns the cluster configuration as this node knows it.
func (n *Node) Members() ([]Member, error) {
	f := n.raft.GetConfiguration()
	if err := n.wait(f); err != nil {
		return nil, raftError(err)
	}
	var out []Member
	for _, s := range f.Configuration().Servers {
		out = append(out, Member{ID: string(s.ID), Address: string(s.Address), Voter: s.Suffrage == hraft.Voter})
	}
	return out, nil
}

// MemberStatus is one member of the cluster as the cluster view shows it:
// its place in the configuration and, when it answered, its own status.
type MemberStatus struct {
	Member
	// Reachable says the member answered; Error says why not.
	Reachable bool   `json:"reachable"`
	Error     string `json:"error,omitempty"`
	Status
}

// statusTimeout bounds the wait for one member's status.
const statusTimeout = 2 * time.Second

// ClusterStatus asks every member of the configuration for its status, at
// once, each within statusTimeout; this node answers for itself.
func (n *Node) ClusterStatus(ctx context.Context) ([]MemberStatus, error) {
	members, err := n.Members()
	if err != nil {
		return nil, err
	}
	out := make([]MemberStatus, len(members))
	var wg sync.WaitGroup
	for i, m := range members {
		out[i].Member = m
		if m.ID == n.cfg.NodeID {
			out[i].Reachable, out[i].Status = true, n.Status()
			continue
		}
		if n.fwd == nil {
			out[i].Error = "no network transport"
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(ctx, statusTimeout)
			defer cancel()
			r, err := n.fwd.callOnce(ctx, m.Address, opStatus, nil)
			if err == nil && r.status != statusOK {
				err = decodeError(r.payload)
			}
			if err == nil {
				err = json.Unmarshal(r.payload, &out[i].Status)
			}
			if err != nil {
				out[i].Error = err.Error()
				return
			}
			out[i].Reachable = true
		}()
	}
	wg.Wait()
	return out, nil
}

// ClusterMembers implements core.Cluster.
func (n *Node) ClusterMembers(ctx context.Context) ([]core.ClusterMember, error) {
	st, err := n.ClusterStatus(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]core.ClusterMember, len(st))
	for i, m := range st {
		out[i] = core.ClusterMember{ID: m.Member.ID, Address: m.Address, Voter: m.Voter, Reachable: m.Reachable, Error: m.Error,
			State: m.State, Leader: m.Leader, AppliedIndex: m.AppliedIndex, LastIndex: m.LastIndex, LastContact: m.LastContact, Info: m.Info}
		if m.Reachable {
			// A member of a release that does not say applies level 1.
			out[i].Level = max(m.Level, 1)
		}
	}
	return out, nil
}
