package raft

import (
	"context"
	"fmt"
	"time"

	"github.com/tallyhq/tally/core"
)

// State level. Every node says in its Status the highest core state level
// its code applies (core.Level). A leader whose state is below that level
// raises it once every member of the configuration answers with a level at
// least as high, so that no node ever reads a log entry its code would
// apply differently; during a rolling upgrade the level therefore rises
// only after the last node runs the new code. It checks at the start of
// its term and then every levelCheck until the level is there.

// levelCheck is how often a leader below core.Level asks the members.
const levelCheck = 5 * time.Second

// raiseLevel runs in a leader's term until the state is at core.Level or
// the term ends.
func (n *Node) raiseLevel(t *term) {
	defer n.wg.Done()
	for {
		ctx, cancel := context.WithTimeout(context.Background(), levelCheck+statusTimeout)
		done, err := n.tryRaiseLevel(ctx)
		cancel()
		if done {
			return
		}
		if err != nil {
			n.log.Debug("state level not raised", "node", n.cfg.NodeID, "err", err)
		}
		select {
		case <-t.done:
			return
		case <-n.closing:
			return
		case <-time.After(levelCheck):
		}
	}
}

// tryRaiseLevel raises the state to core.Level when every member applies
// it, and reports whether the state is there.
func (n *Node) tryRaiseLevel(ctx context.Context) (bool, error) {
	var level int
	if err := n.Read(ctx, func(s *core.State) error { level = s.Level(); return nil }); err != nil {
		return false, err
	}
	if level >= core.Level {
		return true, nil
	}
	if n.mux != nil {
		members, err := n.ClusterStatus(ctx)
		if err != nil {
			return false, err
		}
		for _, m := range members {
			if !m.Reachable {
				return false, fmt.Errorf("member %s did not answer: %s", m.ID, m.Error)
			}
			if m.Level < core.Level {
				return false, fmt.Errorf("member %s applies state level %d, not %d", m.ID, max(m.Level, 1), core.Level)
			}
		}
	}
	if _, err := n.Apply(ctx, &core.RaiseLevel{Level: core.Level}); err != nil {
		return false, err
	}
	n.log.Info("state level raised", "node", n.cfg.NodeID, "level", core.Level)
	return true, nil
}
