package raft

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/tallyhq/tally/core"
)

// stateLevel reads the state level on n.
func stateLevel(t testing.TB, n *Node) int {
	t.Helper()
	var level int
	if err := n.Read(context.Background(), func(s *core.State) error { level = s.Level(); return nil }); err != nil {
		t.Fatal(err)
	}
	return level
}

// waitLevel waits, bounded, until n's state is at want.
func waitLevel(t testing.TB, n *Node, want int) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		got := stateLevel(t, n)
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: state level %d, want %d", n.cfg.NodeID, got, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestSingleNodeRaisesLevel(t *testing.T) {
	n := open(t, t.TempDir(), nil)
	waitLevel(t, n, core.Level)
	if st := n.Status(); st.Level != core.Level {
		t.Fatalf("status says level %d", st.Level)
	}
}

// TestClusterRaisesLevelAfterLastUpgrade: while one member runs a release
// of a lower level the leader leaves the level as it is; once that member
// runs this release, the level rises on every node.
func TestClusterRaisesLevelAfterLastUpgrade(t *testing.T) {
	c := newTestCluster(t)
	old := three[2]
	c.levels = map[string]int{old: 1}
	for _, id := range three {
		c.start(id, three)
	}
	leader := c.node(c.leader())
	// Every member answers (the old one included) before the leader decides.
	members, err := leader.ClusterStatus(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range members {
		if !m.Reachable {
			t.Fatalf("member %s did not answer: %s", m.ID, m.Error)
		}
	}
	done, err := leader.tryRaiseLevel(context.Background())
	if done || err == nil || !strings.Contains(err.Error(), old+" applies state level 1") {
		t.Fatalf("with %s at level 1: raised %v, %v", old, done, err)
	}
	for _, id := range three {
		if got := stateLevel(t, c.node(id)); got != 1 {
			t.Fatalf("%s is at level %d while %s applies 1", id, got, old)
		}
	}
	// The old member is upgraded: stopped and started with this release.
	// Stopped, it says no level at all.
	c.stop(old)
	ms, err := c.node(c.leader()).ClusterMembers(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		if want := map[bool]int{true: 0, false: core.Level}[m.ID == old]; m.Level != want {
			t.Fatalf("member %s (reachable %v) at level %d, want %d", m.ID, m.Reachable, m.Level, want)
		}
	}
	delete(c.levels, old)
	c.start(old, nil)
	for _, id := range three {
		waitLevel(t, c.node(id), core.Level)
	}
}
