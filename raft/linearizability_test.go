package raft

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/tallyhq/tally/core"
)

// faultNet is a network between test nodes that can be cut: a connection
// between two nodes that are partitioned fails on its next read or write,
// and dialing across the cut fails.
type faultNet struct {
	c *testCluster

	mu      sync.Mutex
	blocked map[[2]string]bool
	conns   map[*faultConn]bool
}

type faultConn struct {
	net.Conn
	f        *faultNet
	from, to string
}

var errPartitioned = errors.New("partitioned by the test")

func newFaultNet(c *testCluster) *faultNet {
	return &faultNet{c: c, blocked: map[[2]string]bool{}, conns: map[*faultConn]bool{}}
}

func (f *faultNet) cut(a, b string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.blocked[[2]string{a, b}]
}

// dialer is node from's Dial.
func (f *faultNet) dialer(from string) func(string, time.Duration) (net.Conn, error) {
	return func(address string, timeout time.Duration) (net.Conn, error) {
		to := f.c.nodeAt(address)
		if f.cut(from, to) {
			return nil, errPartitioned
		}
		c, err := net.DialTimeout("tcp", address, timeout)
		if err != nil {
			return nil, err
		}
		fc := &faultConn{Conn: c, f: f, from: from, to: to}
		f.mu.Lock()
		f.conns[fc] = true
		f.mu.Unlock()
		return fc, nil
	}
}

func (c *faultConn) Read(b []byte) (int, error) {
	if c.f.cut(c.from, c.to) {
		c.Close()
		return 0, errPartitioned
	}
	return c.Conn.Read(b)
}

func (c *faultConn) Write(b []byte) (int, error) {
	if c.f.cut(c.from, c.to) {
		c.Close()
		return 0, errPartitioned
	}
	return c.Conn.Write(b)
}

func (c *faultConn) Close() error {
	c.f.mu.Lock()
	delete(c.f.conns, c)
	c.f.mu.Unlock()
	return c.Conn.Close()
}

// isolate cuts node off from every other node, closing what is open.
func (f *faultNet) isolate(node string, others []string) {
	f.mu.Lock()
	for _, o := range others {
		if o != node {
			f.blocked[[2]string{node, o}] = true
			f.blocked[[2]string{o, node}] = true
		}
	}
	var open []*faultConn
	for c := range f.conns {
		if c.from == node || c.to == node {
			open = append(open, c)
		}
	}
	f.mu.Unlock()
	for _, c := range open {
		c.Conn.Close() // a blocked read returns at once
	}
}

// heal joins the network again.
func (f *faultNet) heal() {
	f.mu.Lock()
	defer f.mu.Unlock()
	clear(f.blocked)
}

// nodeAt names the node listening at address.
func (c *testCluster) nodeAt(address string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	for id, a := range c.addrs {
		if a == address {
			return id
		}
	}
	return address
}

// The model: devices hold counts of one feature whose capacity is
// lcCapacity. A checkout sets the device's count when the total stays
// within the capacity and is otherwise denied, leaving it as it was.
const (
	lcDevices  = 4
	lcCapacity = 5
)

type lcState [lcDevices]int64

type lcInput struct {
	device int
	count  int64
}

type lcOutput struct {
	// unknown: the call failed and may or may not have happened.
	unknown bool
	granted bool
	held    int64
}

var leaseModel = (&porcupine.NondeterministicModel{
	Init: func() []any { return []any{lcState{}} },
	Step: func(state, input, output any) []any {
		s, in, out := state.(lcState), input.(lcInput), output.(lcOutput)
		total := int64(0)
		for _, h := range s {
			total += h
		}
		fits := total-s[in.device]+in.count <= lcCapacity
		next := s
		next[in.device] = in.count
		switch {
		case out.unknown:
			// It happened, or it did not.
			if fits {
				return []any{next, s}
			}
			return []any{s}
		case out.granted:
			if fits && out.held == in.count {
				return []any{next}
			}
		default:
			if !fits && out.held == s[in.device] {
				return []any{s}
			}
		}
		return nil
	},
	DescribeOperation: func(input, output any) string {
		in, out := input.(lcInput), output.(lcOutput)
		switch {
		case out.unknown:
			return fmt.Sprintf("device %d: set %d -> ?", in.device, in.count)
		case out.granted:
			return fmt.Sprintf("device %d: set %d -> granted", in.device, in.count)
		}
		return fmt.Sprintf("device %d: set %d -> denied, holds %d", in.device, in.count, out.held)
	},
	DescribeState: func(state any) string { return fmt.Sprint(state.(lcState)) },
}).ToModel()

// TestLinearizableUnderFaults has clients set device counts of a feature of
// capacity 5 on random nodes of a three-node cluster while the test
// isolates nodes, kills the leader and restarts it. The history must be
// linearizable against the model, and no node may ever show more in use
// than the capacity.
func TestLinearizableUnderFaults(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a faulty cluster for several seconds")
	}
	c := newTestCluster(t)
	fnet := newFaultNet(c)
	c.dial = fnet.dialer
	for _, id := range three {
		c.start(id, three)
	}
	leader := c.node(c.leader())
	apply(t, leader, &core.LoadRights{Source: "test", Sequence: 1, Lines: []core.FeatureLine{{Name: "cad", Version: rights(0).Lines[0].Version, Count: lcCapacity}}})
	for d := range lcDevices {
		apply(t, leader, hello(device(t, devName(d))))
	}

	start := time.Now()
	clock := func() int64 { return int64(time.Since(start)) }
	var (
		mu      sync.Mutex
		history []porcupine.Operation
	)
	stop := make(chan struct{})
	var overAllocated atomic.Value
	var completed atomic.Int64
	var clientsLeft atomic.Int64
	clientsLeft.Store(lcDevices)
	var wg sync.WaitGroup

	// Clients: each is one device, on a random live node each time.
	for d := range lcDevices {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer clientsLeft.Add(-1)
			r := rand.New(rand.NewPCG(uint64(d), 7))
			client := d
			for op := 0; op < 150; op++ {
				select {
				case <-stop:
					return
				default:
				}
				ids := c.running()
				n := c.node(ids[r.IntN(len(ids))])
				if n == nil {
					continue
				}
				in := lcInput{device: d, count: int64(r.IntN(4))}
				call := clock()
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				res, err := n.Apply(ctx, checkout(device(t, devName(d)), "cad", in.count))
				cancel()
				ret := clock()
				out := lcOutput{granted: err == nil && res.Denied == core.NotDenied, held: res.Grant.Count}
				if err != nil {
					if !errors.Is(err, core.ErrNotApplied) {
						t.Errorf("device %d: a refusal that is not a failure: %v", d, err)
					}
					out = lcOutput{unknown: true}
					ret = 1 << 62 // it may take effect any time later
				}
				mu.Lock()
				history = append(history, porcupine.Operation{ClientId: client, Input: in, Call: call, Output: out, Return: ret})
				mu.Unlock()
				if out.unknown {
					// The failed call may still take effect at any time:
					// the device goes on as another client of the history.
					client += lcDevices
				} else {
					completed.Add(1)
				}
			}
		}()
	}

	// The watcher: no node ever shows more in use than the capacity.
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
			for _, id := range c.running() {
				n := c.node(id)
				if n == nil {
					continue
				}
				n.fsm.read(func(s *core.State) error {
					for _, f := range s.Features() {
						if f.Used > lcCapacity {
							overAllocated.Store(fmt.Sprintf("%s shows %d of %d used", id, f.Used, lcCapacity))
						}
					}
					return nil
				})
			}
		}
	}()

	// The nemesis: bounded rounds of faults.
	r := rand.New(rand.NewPCG(3, 3))
	for round := 0; round < 8; round++ {
		// Each round starts once the cluster has served a few more
		// requests, however slow the machine.
		deadline := time.After(time.Minute)
		for want := completed.Load() + 5; completed.Load() < want && clientsLeft.Load() > 0; {
			select {
			case <-time.After(10 * time.Millisecond):
			case <-deadline:
				t.Fatalf("round %d: the cluster serves nothing", round)
			}
		}
		switch r.IntN(3) {
		case 0: // isolate the leader
			l := c.leader()
			fnet.isolate(l, three)
			time.Sleep(700 * time.Millisecond)
			fnet.heal()
		case 1: // isolate a random node
			fnet.isolate(three[r.IntN(3)], three)
			time.Sleep(500 * time.Millisecond)
			fnet.heal()
		case 2: // kill the leader and bring it back
			l := c.leader()
			c.kill(l)
			time.Sleep(500 * time.Millisecond)
			c.start(l, nil)
		}
	}
	close(stop)
	wg.Wait()
	if v := overAllocated.Load(); v != nil {
		t.Fatalf("over-allocated: %s", v)
	}

	mu.Lock()
	defer mu.Unlock()
	known := 0
	for _, op := range history {
		if !op.Output.(lcOutput).unknown {
			known++
		}
	}
	if known < 20 {
		t.Fatalf("only %d operations completed; the cluster did not serve through the faults", known)
	}
	res, info := porcupine.CheckOperationsVerbose(leaseModel, history, time.Minute)
	switch res {
	case porcupine.Ok:
		t.Logf("%d operations (%d with unknown outcome) are linearizable", len(history), len(history)-known)
	case porcupine.Illegal:
		path := filepath.Join(os.TempDir(), fmt.Sprintf("tally-linearizability-%d.html", time.Now().UnixNano()))
		porcupine.VisualizePath(leaseModel, info, path)
		t.Fatalf("the history of %d operations is not linearizable; see %s", len(history), path)
	default:
		t.Logf("the checker gave up on %d operations within its bound; not a failure of the cluster", len(history))
	}
}
