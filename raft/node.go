package raft

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	hraft "github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"go.etcd.io/bbolt"

	"github.com/tallyhq/tally/core"
)

// Tuning for a single node. With no peers to hear from, short timeouts only
// make the node elect itself soon after start; they cost nothing later.
const (
	heartbeatTimeout  = 50 * time.Millisecond
	electionTimeout   = 50 * time.Millisecond
	leaderLease       = 50 * time.Millisecond
	commitTimeout     = 5 * time.Millisecond
	snapshotThreshold = 8192
	snapshotInterval  = time.Minute
	trailingLogs      = 4096
	retainSnapshots   = 2
	// boltOpenTimeout bounds the wait for the bolt file lock, held by
	// another process using the same data directory.
	boltOpenTimeout = 5 * time.Second
	// startupWait bounds how long Open waits for the node to become leader
	// and catch up; past it Open returns a node that is still electing.
	startupWait = 10 * time.Second
)

// Node is a member of the replicated log with its state machine. It
// implements core.Store.
type Node struct {
	cfg     Config
	log     *slog.Logger
	fsm     *fsm
	raft    *hraft.Raft
	store   *raftboltdb.BoltStore
	trans   io.Closer
	session core.SessionID

	// A cluster node's peer port and its connection to the leader; nil on
	// a single node.
	mux    *mux
	fwd    *forwarder
	fwdSeq atomic.Uint64

	// failing maps followers that fail heartbeats to when they were last
	// heard from (deadservers.go).
	deadMu  sync.Mutex
	failing map[string]time.Time
	// crashed makes Close stop at once, as a crash would (tests).
	crashed atomic.Bool

	// Group commit (commit.go). seq and lastAt belong to the batcher.
	queue    chan *pending
	slots    chan struct{}
	inflight chan *batch
	pendings sync.Pool
	seq      uint64
	lastAt   time.Time

	// Leadership: term is the current leadership term, nil while not
	// leader; firstReady closes when the node first caught up as leader.
	notify     chan bool
	mu         sync.Mutex
	term       *term
	firstReady chan struct{}
	readyOnce  sync.Once

	closing   chan struct{} // closed when Close starts
	raftDown  chan struct{} // closed when raft has shut down
	stopped   chan struct{} // closed when every goroutine has ended
	wg        sync.WaitGroup
	closeOnce sync.Once
	closeErr  error
}

var _ core.Store = (*Node)(nil)

// term is one period of leadership.
type term struct {
	ready chan struct{} // closed once the barrier of the term completed
	done  chan struct{} // closed when the term ends
}

// Open opens (or creates) the node's data in cfg.DataDir and starts it. On
// first start it bootstraps a one-member cluster. Open returns once the node
// is leader and has applied its log, or after a bounded wait.
func Open(cfg Config) (*Node, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	session, err := newSession(cfg.Random)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("create data directory: %w", err)
	}
	store, err := raftboltdb.New(raftboltdb.Options{
		Path:        filepath.Join(cfg.DataDir, "raft.db"),
		BoltOptions: &bbolt.Options{Timeout: boltOpenTimeout},
	})
	if err != nil {
		return nil, fmt.Errorf("open raft store: %w", err)
	}
	n, err := start(cfg, session, store)
	if err != nil {
		store.Close()
		return nil, err
	}
	if cfg.Cluster != nil {
		// A cluster node serves as soon as it runs: as a follower it
		// forwards, and while there is no leader requests wait for one.
		return n, nil
	}
	select {
	case <-n.firstReady:
	case <-time.After(startupWait):
		n.log.Warn("raft node is not leader yet", "node", cfg.NodeID, "waited", startupWait)
	}
	return n, nil
}

func newSession(random io.Reader) (core.SessionID, error) {
	var b [8]byte
	for range 16 {
		if _, err := io.ReadFull(random, b[:]); err != nil {
			return 0, fmt.Errorf("pick request session: %w", err)
		}
		if s := core.SessionID(binary.LittleEndian.Uint64(b[:])); s != 0 {
			return s, nil
		}
	}
	return 0, errors.New("pick request session: random source gives only zeros")
}

func start(cfg Config, session core.SessionID, store *raftboltdb.BoltStore) (*Node, error) {
	hlog := newHCLogger(cfg.Logger)
	snaps, err := hraft.NewFileSnapshotStoreWithLogger(cfg.DataDir, retainSnapshots, hlog)
	if err != nil {
		return nil, fmt.Errorf("open snapshot store: %w", err)
	}
	var (
		addr  hraft.ServerAddress
		trans closingTransport
		m     *mux
	)
	members := []hraft.Server{{Suffrage: hraft.Voter, ID: hraft.ServerID(cfg.NodeID)}}
	if cc := cfg.Cluster; cc != nil {
		if m, err = newMux(cc.Listener, cc.Advertise, cc.ServerTLS, cc.ClientTLS); err != nil {
			return nil, err
		}
		m.dialer = cc.Dial
		nt := hraft.NewNetworkTransportWithConfig(&hraft.NetworkTransportConfig{
			Stream: raftLayer{m}, MaxPool: networkTransportPool, Timeout: networkTransportTimout, Logger: hlog,
		})
		addr, trans = nt.LocalAddr(), nt
		members = members[:0]
		for _, b := range cc.Bootstrap {
			members = append(members, hraft.Server{Suffrage: hraft.Voter, ID: hraft.ServerID(b.ID), Address: hraft.ServerAddress(b.Address)})
		}
	} else {
		addr, trans = hraft.NewInmemTransport(hraft.ServerAddress(cfg.NodeID))
		members[0].Address = addr
	}
	notify := make(chan bool, 8)

	rc := hraft.DefaultConfig()
	rc.LocalID = hraft.ServerID(cfg.NodeID)
	rc.HeartbeatTimeout = heartbeatTimeout
	rc.ElectionTimeout = electionTimeout
	rc.LeaderLeaseTimeout = leaderLease
	rc.CommitTimeout = commitTimeout
	if cc := cfg.Cluster; cc != nil {
		rc.HeartbeatTimeout = cc.HeartbeatTimeout
		rc.ElectionTimeout = cc.ElectionTimeout
		rc.LeaderLeaseTimeout = cc.LeaderLeaseTimeout
	}
	rc.SnapshotThreshold = snapshotThreshold
	rc.SnapshotInterval = snapshotInterval
	rc.TrailingLogs = trailingLogs
	// A buffered apply channel lets raft write every entry in flight with
	// one fsync. Raft leaves futures still in it at shutdown unanswered;
	// Node.wait copes with that.
	rc.BatchApplyCh = true
	rc.NotifyCh = notify
	rc.Logger = hlog
	if err := hraft.ValidateConfig(rc); err != nil {
		trans.Close()
		return nil, fmt.Errorf("raft config: %w", err)
	}

	existing, err := hraft.HasExistingState(store, store, snaps)
	if err != nil {
		trans.Close()
		return nil, fmt.Errorf("inspect raft state: %w", err)
	}
	if !existing && len(members) > 0 {
		if err := hraft.BootstrapCluster(rc, store, store, snaps, trans, hraft.Configuration{Servers: members}); err != nil {
			trans.Close()
			return nil, fmt.Errorf("bootstrap raft: %w", err)
		}
	}

	f := newFSM(cfg.Core, cfg.Observe)
	r, err := hraft.NewRaft(rc, f, store, store, snaps, trans)
	if err != nil {
		trans.Close()
		return nil, fmt.Errorf("start raft: %w", err)
	}
	n := &Node{
		cfg: cfg, log: cfg.Logger, fsm: f, raft: r, store: store, trans: trans, session: session, mux: m,
		queue:      make(chan *pending, 4*cfg.MaxBatch),
		slots:      make(chan struct{}, maxInflight),
		inflight:   make(chan *batch, maxInflight),
		notify:     notify,
		firstReady: make(chan struct{}),
		closing:    make(chan struct{}),
		raftDown:   make(chan struct{}),
		stopped:    make(chan struct{}),
	}
	if m != nil {
		n.fwd = &forwarder{m: m}
		m.onForward = n.serveForward
		m.wg.Add(1)
		go m.serve()
		if cfg.Cluster.DeadServerTimeout > 0 {
			n.failing = map[string]time.Time{}
			ch := make(chan hraft.Observation, 64)
			r.RegisterObserver(hraft.NewObserver(ch, false, func(o *hraft.Observation) bool {
				switch o.Data.(type) {
				case hraft.FailedHeartbeatObservation, hraft.ResumedHeartbeatObservation:
					return true
				}
				return false
			}))
			n.wg.Add(2)
			go n.watchHeartbeats(ch)
			go n.removeDeadServers()
		}
	}
	n.wg.Add(3)
	go n.runBatcher()
	go n.runCompleter()
	go n.watchLeadership()
	return n, nil
}

// closingTransport is a raft transport the node closes: in-memory or
// network.
type closingTransport interface {
	hraft.Transport
	Close() error
}

// watchLeadership follows raft's leadership changes: each time the node
// becomes leader it starts a term that issues a barrier and then ticks.
func (n *Node) watchLeadership() {
	defer n.wg.Done()
	for {
		select {
		case <-n.closing:
			n.endTerm()
			return
		case leader := <-n.notify:
			n.endTerm()
			if leader {
				t := &term{ready: make(chan struct{}), done: make(chan struct{})}
				n.mu.Lock()
				n.term = t
				n.mu.Unlock()
				n.wg.Add(1)
				go n.lead(t)
			}
		}
	}
}

func (n *Node) endTerm() {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.term != nil {
		close(n.term.done)
		n.term = nil
	}
}

func (n *Node) currentTerm() *term {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.term
}

// leaderTerm returns the current term; when raft already says this node
// leads but the term has not started yet (watchLeadership hears of it a
// moment later), it waits for it, bounded by ctx.
func (n *Node) leaderTerm(ctx context.Context) *term {
	for {
		if t := n.currentTerm(); t != nil || !n.isLeader() {
			return t
		}
		select {
		case <-time.After(time.Millisecond):
		case <-ctx.Done():
			return nil
		case <-n.closing:
			return nil
		}
	}
}

// lead runs one leadership term: a barrier, so that the state holds every
// entry committed before the term (reads wait for it), then a tick every
// TickInterval until the term ends.
func (n *Node) lead(t *term) {
	defer n.wg.Done()
	if err := n.wait(n.raft.Barrier(0)); err != nil {
		n.log.Warn("raft barrier after election failed", "node", n.cfg.NodeID, "err", err)
		return
	}
	close(t.ready)
	n.readyOnce.Do(func() { close(n.firstReady) })
	n.fixOwnAddress()
	n.wg.Add(1)
	go n.raiseLevel(t)
	ticker := time.NewTicker(n.cfg.TickInterval)
	defer ticker.Stop()
	tick := &core.Tick{}
	for {
		select {
		case <-t.done:
			return
		case <-n.closing:
			return
		case <-ticker.C:
			ctx, cancel := context.WithTimeout(context.Background(), max(10*n.cfg.TickInterval, 10*time.Second))
			_, err := n.Apply(ctx, tick)
			cancel()
			if err != nil && !errors.Is(err, ErrClosed) {
				n.log.Debug("tick not applied", "node", n.cfg.NodeID, "err", err)
			}
		}
	}
}

// handOverLeadership transfers leadership to another voter before a
// leader of a cluster stops, so the others need not wait out an election
// timeout. It gives up after leadershipTransferWait.
func (n *Node) handOverLeadership() {
	if n.mux == nil || n.crashed.Load() || !n.isLeader() {
		return
	}
	members, err := n.Members()
	if err != nil {
		return
	}
	voters := 0
	for _, m := range members {
		if m.Voter {
			voters++
		}
	}
	if voters < 2 {
		return
	}
	done := make(chan error, 1)
	go func() { done <- n.raft.LeadershipTransfer().Error() }()
	select {
	case err := <-done:
		if err != nil {
			n.log.Warn("leadership not handed over before stopping", "err", err)
			return
		}
		n.log.Info("leadership handed over before stopping", "node", n.cfg.NodeID)
	case <-time.After(leadershipTransferWait):
		n.log.Warn("leadership not handed over before stopping", "waited", leadershipTransferWait)
	}
}

// fixOwnAddress updates this node's address in the configuration when it
// differs from where it listens now: a node first run alone on the
// in-memory transport, or moved to another address, is reachable by the
// peers that join it.
func (n *Node) fixOwnAddress() {
	if n.mux == nil {
		return
	}
	want := n.mux.advertise.String()
	members, err := n.Members()
	if err != nil {
		return
	}
	for _, m := range members {
		if m.ID == n.cfg.NodeID && m.Address != want {
			if err := n.wait(n.raft.AddVoter(hraft.ServerID(m.ID), hraft.ServerAddress(want), 0, membershipTimeout)); err != nil {
				n.log.Warn("cannot update this node's address", "node", m.ID, "from", m.Address, "to", want, "err", err)
				return
			}
			n.log.Info("this node's address updated", "node", m.ID, "from", m.Address, "to", want)
			n.recordMemberChange(&core.MemberChanged{Change: core.MemberReaddress, Node: m.ID, Address: want,
				Reason: "it listens there now (it was at " + m.Address + ")"})
		}
	}
}

// Read runs fn on the state once it reflects every command acknowledged
// before Read was called: the node must be leader, have applied the log of
// its term's start, and still be leader now.
func (n *Node) Read(ctx context.Context, fn func(*core.State) error) error {
	if n.fwd != nil && !n.isLeader() {
		return n.readFollower(ctx, fn)
	}
	t := n.leaderTerm(ctx)
	if t == nil {
		if n.fwd != nil && ctx.Err() == nil {
			// Leadership went elsewhere meanwhile: ask the new leader.
			return n.readFollower(ctx, fn)
		}
		return notLeader()
	}
	select {
	case <-t.ready:
	case <-t.done:
		return notLeader()
	case <-n.closing:
		return errClosed()
	case <-ctx.Done():
		return fmt.Errorf("%w: %w", core.ErrNotApplied, ctx.Err())
	}
	if err := n.wait(n.raft.VerifyLeader()); err != nil {
		return raftError(err)
	}
	return n.fsm.read(fn)
}

func notLeader() error { return fmt.Errorf("%w: %w", ErrNotLeader, core.ErrNotApplied) }

// Status describes the node for the cluster view.
type Status struct {
	NodeID string `json:"nodeId"`
	// State is raft's: Leader, Follower, Candidate or Shutdown.
	State string `json:"state"`
	// Leader is the leader's node ID, empty while none is known.
	Leader       string `json:"leader"`
	AppliedIndex uint64 `json:"appliedIndex"`
	LastIndex    uint64 `json:"lastIndex"`
	// LastContact is when the node last heard from the leader; for the
	// leader itself, now.
	LastContact time.Time `json:"lastContact,omitzero"`
	// Info is Config.Describe's answer.
	Info map[string]string `json:"info,omitempty"`
	// Level is the highest state level the node's code applies
	// (core.Level); older nodes leave it out, which reads as 1.
	Level int `json:"level,omitempty"`
}

// Status returns the node's raft status.
func (n *Node) Status() Status {
	state := n.raft.State()
	_, leader := n.raft.LeaderWithID()
	s := Status{
		NodeID: n.cfg.NodeID, State: state.String(), Leader: string(leader),
		AppliedIndex: n.fsm.applied.Load(), LastIndex: n.raft.LastIndex(), LastContact: n.raft.LastContact(),
		Level: core.Level,
	}
	if n.cfg.level != 0 {
		s.Level = n.cfg.level
	}
	if state == hraft.Leader {
		s.LastContact = n.cfg.Now()
	}
	if n.cfg.Describe != nil {
		s.Info = n.cfg.Describe()
	}
	return s
}

// snapshot makes raft take a snapshot now.
func (n *Node) snapshot() error {
	return n.raft.Snapshot().Error()
}

// Close stops the node: queued commands get ErrClosed, raft shuts down and
// the store is closed. It is safe to call more than once.
func (n *Node) Close() error {
	n.closeOnce.Do(func() {
		n.handOverLeadership()
		close(n.closing)
		err := n.raft.Shutdown().Error()
		close(n.raftDown)
		if n.fwd != nil {
			n.fwd.close()
		}
		n.wg.Wait()
		close(n.stopped)
		err = errors.Join(err, n.trans.Close(), n.store.Close())
		if n.mux != nil {
			n.mux.close()
			n.mux.wait()
		}
		if err != nil {
			n.closeErr = fmt.Errorf("close raft node: %w", err)
		}
	})
	return n.closeErr
}
