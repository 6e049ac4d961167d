package raft

import (
	"context"
	"fmt"
	"time"

	hraft "github.com/hashicorp/raft"
	"github.com/tallyhq/tally/core"
)

// Dead servers. The leader learns from raft which followers fail their
// heartbeats and since when they were last heard from. A member not heard
// from for ClusterConfig.DeadServerTimeout is removed, one at a time, and
// only while the cluster stays safe: the voters left must number at least
// MinVoters, and those still answering must form a quorum of the current
// configuration without the dead one. A cluster that lost its quorum
// therefore never shrinks itself to get it back; an administrator decides.

// deadServerCheck bounds how often the leader looks for dead servers.
const deadServerCheck = time.Second

// watchHeartbeats records which followers fail their heartbeats and when
// they were last heard from.
func (n *Node) watchHeartbeats(ch <-chan hraft.Observation) {
	defer n.wg.Done()
	for {
		select {
		case <-n.closing:
			return
		case o := <-ch:
			n.deadMu.Lock()
			switch d := o.Data.(type) {
			case hraft.FailedHeartbeatObservation:
				if _, ok := n.failing[string(d.PeerID)]; !ok {
					n.failing[string(d.PeerID)] = d.LastContact
				}
			case hraft.ResumedHeartbeatObservation:
				delete(n.failing, string(d.PeerID))
			}
			n.deadMu.Unlock()
		}
	}
}

// removeDeadServers runs on every node; it acts only while leader.
func (n *Node) removeDeadServers() {
	defer n.wg.Done()
	cc := n.cfg.Cluster
	ticker := time.NewTicker(min(deadServerCheck, cc.DeadServerTimeout/2))
	defer ticker.Stop()
	for {
		select {
		case <-n.closing:
			return
		case <-ticker.C:
		}
		if !n.isLeader() {
			// What a former term saw is stale.
			n.deadMu.Lock()
			clear(n.failing)
			n.deadMu.Unlock()
			continue
		}
		if id, address, ok := n.deadServer(); ok {
			ctx, cancel := context.WithTimeout(context.Background(), membershipTimeout)
			err := n.removeLocal(ctx, id)
			cancel()
			if err != nil {
				n.log.Warn("cannot remove a dead server", "node", id, "err", err)
				continue
			}
			n.deadMu.Lock()
			delete(n.failing, id)
			n.deadMu.Unlock()
			n.log.Warn("dead server removed", "node", id, "silent_for", cc.DeadServerTimeout)
			n.recordMemberChange(&core.MemberChanged{Change: core.MemberRemoved, Node: id, Address: address,
				Reason: fmt.Sprintf("a dead server: no answer for %s", cc.DeadServerTimeout)})
		}
	}
}

// deadServer picks a member to remove, if one may be, and returns its ID
// and address.
func (n *Node) deadServer() (string, string, bool) {
	members, err := n.Members()
	if err != nil {
		return "", "", false
	}
	now := time.Now()
	n.deadMu.Lock()
	defer n.deadMu.Unlock()
	voters, healthy := 0, 0
	for _, m := range members {
		if !m.Voter {
			continue
		}
		voters++
		if _, failing := n.failing[m.ID]; !failing || m.ID == n.cfg.NodeID {
			healthy++
		}
	}
	for _, m := range members {
		since, failing := n.failing[m.ID]
		if !failing || m.ID == n.cfg.NodeID || now.Sub(since) < n.cfg.Cluster.DeadServerTimeout {
			continue
		}
		if !m.Voter {
			return m.ID, m.Address, true
		}
		if voters-1 >= n.cfg.Cluster.MinVoters && healthy >= voters/2+1 {
			return m.ID, m.Address, true
		}
	}
	return "", "", false
}
