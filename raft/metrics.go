package raft

import (
	"fmt"
	"io"

	hraft "github.com/hashicorp/raft"
)

// WriteMetrics writes the node's metrics in the Prometheus text format.
func (n *Node) WriteMetrics(w io.Writer) {
	batches, requests := n.fsm.batches.Load(), n.fsm.requests.Load()
	mean := 0.0
	if batches > 0 {
		mean = float64(requests) / float64(batches)
	}
	leader := 0
	if n.raft.State() == hraft.Leader {
		leader = 1
	}
	metric := func(name, typ, help string, value any) {
		fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s %s\n%s %v\n", name, help, name, typ, name, value)
	}
	metric("tally_raft_applied_index", "gauge", "Index of the last log entry applied to the state.", n.fsm.applied.Load())
	metric("tally_raft_last_index", "gauge", "Index of the last log entry stored.", n.raft.LastIndex())
	metric("tally_raft_batches_applied_total", "counter", "Log entries (batches of requests) applied since start.", batches)
	metric("tally_raft_requests_applied_total", "counter", "Requests applied since start.", requests)
	metric("tally_raft_batch_size_mean", "gauge", "Mean requests per applied log entry since start.", mean)
	metric("tally_raft_batch_size_last", "gauge", "Requests in the last applied log entry.", n.fsm.lastBatch.Load())
	metric("tally_raft_leader", "gauge", "1 when this node is the leader, else 0.", leader)
	metric("tally_raft_term", "gauge", "The current raft term.", n.raft.CurrentTerm())
	metric("tally_raft_commit_index", "gauge", "Index of the last log entry known committed.", n.raft.CommitIndex())
	members, voters := 0, 0
	if f := n.raft.GetConfiguration(); f.Error() == nil {
		for _, s := range f.Configuration().Servers {
			members++
			if s.Suffrage == hraft.Voter {
				voters++
			}
		}
	}
	metric("tally_raft_members", "gauge", "Servers in the cluster configuration.", members)
	metric("tally_raft_voters", "gauge", "Voters in the cluster configuration.", voters)
	since := 0.0
	if leader == 0 {
		if last := n.raft.LastContact(); !last.IsZero() {
			since = n.cfg.Now().Sub(last).Seconds()
		} else {
			since = -1
		}
	}
	metric("tally_raft_last_contact_seconds", "gauge", "Seconds since this follower last heard from the leader: 0 on the leader, -1 when never.", since)
}
