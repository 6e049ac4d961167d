package raft

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tallyhq/tally/core"
	"github.com/tallyhq/tally/core/hostid"
	"github.com/tallyhq/tally/core/version"
)

// The forwarding protocol (DESIGN.md): frames of a 4-byte big-endian
// length, then for a request the op, an 8-byte request ID and the 8-byte
// time left to its deadline in nanoseconds, and for a reply the status and
// the request ID; then the payload.
const (
	opApply     byte = 1 // payload: core.EncodeRequest; reply: core.Result JSON
	opReadIndex byte = 2 // payload: none; reply: 8-byte index
	opAddVoter  byte = 3 // payload: member JSON; reply: none
	opRemove    byte = 4 // payload: member JSON; reply: none
	opStatus    byte = 5 // payload: none; reply: Status JSON (any node answers)

	statusOK    byte = 0
	statusError byte = 1

	requestHeader = 1 + 8 + 8
	replyHeader   = 1 + 8
	// maxFrame bounds a frame; a request is at most core.MaxRequestBytes.
	maxFrame = core.MaxRequestBytes + 4096
	// maxForwardInflight bounds the requests one connection may have
	// served at once on the leader.
	maxForwardInflight = 8192
	// forwardDialTimeout bounds dialing the leader.
	forwardDialTimeout = 5 * time.Second
)

// errForwardBroken answers requests pending on a connection that broke.
var errForwardBroken = errors.New("connection to the leader broke")

// forwardedErrors are the sentinels an error keeps across a forward: the
// follower's caller can ask errors.Is of a refusal as on the leader.
var forwardedErrors = []error{
	core.ErrNotApplied, ErrNotLeader, ErrClosed, ErrMalformedEntry,
	core.ErrInvalidCommand, core.ErrUnknownCommand, core.ErrInvalidRequest, core.ErrInvalidFeature,
	core.ErrInvalidCount, core.ErrUnknownFeature, core.ErrUnknownDevice, core.ErrInvalidDevice,
	core.ErrStaleRights, core.ErrUnknownRights, core.ErrInvalidModel, core.ErrOverAllocated,
	core.ErrModelExclusive, core.ErrInvalidReserve, core.ErrUnknownGroup, core.ErrUnknownProperty,
	core.ErrInvalidProperty, core.ErrPropertyLocked, core.ErrDropNotAllowed, core.ErrInvalidSnapshot,
	core.ErrConflictingLock, core.ErrUnknownFeatureVer, core.ErrUnknownUser, core.ErrUserExists,
	core.ErrInvalidUser, core.ErrLastAdmin, core.ErrAuditTampered, core.ErrInvalidKey,
	core.ErrUnknownKey, core.ErrKeyExists, core.ErrDuplicateKeySecret, core.ErrKeyInactive,
	core.ErrAlreadyOnboarded, core.ErrInvalidLicensingID, core.ErrKeyUsed, core.ErrKeyNotForDevice,
	core.ErrInvalidClientKey, core.ErrInvalidClusterCA, core.ErrClusterCAExists, core.ErrInvalidJoinToken,
	core.ErrUnknownJoinToken, core.ErrJoinTokenExists, core.ErrJoinTokenExpired, core.ErrJoinTokenUsed, core.ErrJoinLevel,
	core.ErrSyncOutOfOrder, core.ErrSyncReplay, core.ErrInvalidActivation, core.ErrInvalidUsage,
	core.ErrSuperseded, core.ErrInvalidLevel, core.ErrBackupDamaged, core.ErrBackupPassword,
	hostid.ErrUnknownType, hostid.ErrInvalidValue, version.ErrInvalid,
	ErrInvalidMember, ErrJoin,
}

// sentinelByText finds a forwarded sentinel by its text. Texts, not
// positions, travel, so nodes of different versions understand each other
// during a rolling upgrade: a sentinel one side does not know is left out.
var sentinelByText = func() map[string]error {
	m := make(map[string]error, len(forwardedErrors))
	for _, e := range forwardedErrors {
		m[e.Error()] = e
	}
	return m
}()

// wireError is an error as a reply carries it: its text and the texts of
// the forwarded sentinels it wraps.
type wireError struct {
	Message   string   `json:"message"`
	Sentinels []string `json:"sentinels,omitempty"`
}

func encodeError(err error) []byte {
	w := wireError{Message: err.Error()}
	for _, s := range forwardedErrors {
		if errors.Is(err, s) {
			w.Sentinels = append(w.Sentinels, s.Error())
		}
	}
	b, _ := json.Marshal(w)
	return b
}

// remoteError is an error the leader returned: its text, and the sentinels
// it wrapped there.
type remoteError struct {
	msg       string
	sentinels []error
}

func (e *remoteError) Error() string   { return e.msg }
func (e *remoteError) Unwrap() []error { return e.sentinels }

func decodeError(b []byte) error {
	var w wireError
	if err := json.Unmarshal(b, &w); err != nil {
		return fmt.Errorf("%w: unreadable error from the leader: %w", core.ErrNotApplied, err)
	}
	e := &remoteError{msg: w.Message}
	for _, text := range w.Sentinels {
		if s, ok := sentinelByText[text]; ok {
			e.sentinels = append(e.sentinels, s)
		}
	}
	return e
}

// member names a server in a membership change.
type member struct {
	ID      string `json:"id"`
	Address string `json:"address,omitempty"`
}

// reply is what a request gets back.
type reply struct {
	status  byte
	payload []byte
}

// forwarder keeps one connection to the leader and sends requests on it.
type forwarder struct {
	m *mux

	mu   sync.Mutex
	conn *fwdConn
	// dialing is the dial in progress; requests for the same address wait
	// for it instead of each dialing in turn, so that a leader that died
	// costs them one dial timeout together, not one each.
	dialing *dialAttempt
	closed  bool
}

// dialAttempt is one dial of the leader, shared by the requests that need
// it; done is closed when fc or err is set.
type dialAttempt struct {
	address string
	done    chan struct{}
	fc      *fwdConn
	err     error
	waiters int // requests waiting for it besides the one dialing, under forwarder.mu
}

// fwdConn is one forwarding connection and its pending requests.
type fwdConn struct {
	address string
	c       net.Conn

	w *batchWriter

	mu      sync.Mutex
	nextID  uint64
	pending map[uint64]chan reply
	err     error // set once the connection broke
	dead    chan struct{}
}

// call sends one request to the leader at address and waits for its reply.
func (f *forwarder) call(ctx context.Context, address string, op byte, payload []byte) (reply, error) {
	fc, err := f.connect(address)
	if err != nil {
		return reply{}, fmt.Errorf("%w: %w", core.ErrNotApplied, err)
	}
	return fc.send(ctx, op, payload)
}

// send writes one request on the connection and waits for its reply.
func (fc *fwdConn) send(ctx context.Context, op byte, payload []byte) (reply, error) {
	ch := make(chan reply, 1)
	fc.mu.Lock()
	if fc.err != nil {
		err := fc.err
		fc.mu.Unlock()
		return reply{}, fmt.Errorf("%w: %w", core.ErrNotApplied, err)
	}
	fc.nextID++
	id := fc.nextID
	fc.pending[id] = ch
	fc.mu.Unlock()
	defer func() {
		fc.mu.Lock()
		delete(fc.pending, id)
		fc.mu.Unlock()
	}()

	left := time.Duration(0)
	if dl, ok := ctx.Deadline(); ok {
		left = max(time.Until(dl), time.Millisecond)
	}
	var hdr [4 + requestHeader]byte
	binary.BigEndian.PutUint32(hdr[:4], uint32(requestHeader+len(payload)))
	hdr[4] = op
	binary.BigEndian.PutUint64(hdr[5:], id)
	binary.BigEndian.PutUint64(hdr[13:], uint64(left))
	if err := fc.w.write(hdr[:], payload); err != nil {
		fc.fail(err)
		return reply{}, fmt.Errorf("%w: %w: %w", core.ErrNotApplied, errForwardBroken, err)
	}
	select {
	case r := <-ch:
		return r, nil
	case <-fc.dead:
		return reply{}, fmt.Errorf("%w: %w: %w", core.ErrNotApplied, errForwardBroken, fc.err)
	case <-ctx.Done():
		return reply{}, fmt.Errorf("%w: %w", core.ErrNotApplied, ctx.Err())
	}
}

// callOnce sends one request to the peer at address on a connection of
// its own, closed after the reply: for asking any member, not the leader.
func (f *forwarder) callOnce(ctx context.Context, address string, op byte, payload []byte) (reply, error) {
	timeout := forwardDialTimeout
	if dl, ok := ctx.Deadline(); ok {
		timeout = max(time.Until(dl), time.Millisecond)
	}
	c, err := f.m.dial(address, protoForward, timeout)
	if err != nil {
		return reply{}, err
	}
	fc := newFwdConn(address, c)
	defer fc.fail(errors.New("done"))
	return fc.send(ctx, op, payload)
}

// connect returns the connection to address, dialing a new one when there
// is none or the one there is broke or goes elsewhere. The dial runs
// outside the lock: a request for another address (a new leader) does not
// wait behind a dial of a dead one.
func (f *forwarder) connect(address string) (*fwdConn, error) {
	f.mu.Lock()
	if fc := f.conn; fc != nil {
		fc.mu.Lock()
		ok := fc.err == nil && fc.address == address
		fc.mu.Unlock()
		if ok {
			f.mu.Unlock()
			return fc, nil
		}
	}
	if d := f.dialing; d != nil && d.address == address {
		d.waiters++
		f.mu.Unlock()
		<-d.done
		return d.fc, d.err
	}
	d := &dialAttempt{address: address, done: make(chan struct{})}
	f.dialing = d
	f.mu.Unlock()

	c, err := f.m.dial(address, protoForward, forwardDialTimeout)

	f.mu.Lock()
	if f.dialing == d {
		f.dialing = nil
	}
	switch {
	case err != nil:
		d.err = err
	case f.closed:
		c.Close()
		d.err = ErrClosed
	default:
		d.fc = newFwdConn(address, c)
		if old := f.conn; old != nil {
			old.fail(errors.New("leader changed"))
		}
		f.conn = d.fc
	}
	f.mu.Unlock()
	close(d.done)
	return d.fc, d.err
}

// close breaks the connection, if any.
func (f *forwarder) close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
	if f.conn != nil {
		f.conn.fail(ErrClosed)
		f.conn = nil
	}
}

// newFwdConn starts reading replies on c, a connection to address.
func newFwdConn(address string, c net.Conn) *fwdConn {
	fc := &fwdConn{address: address, c: c, w: newBatchWriter(c), pending: map[uint64]chan reply{}, dead: make(chan struct{})}
	go fc.readLoop()
	return fc
}

// readLoop hands each reply to its waiter until the connection breaks.
func (fc *fwdConn) readLoop() {
	br := bufio.NewReader(fc.c)
	for {
		body, err := readFrame(br)
		if err == nil && len(body) < replyHeader {
			err = errors.New("short reply frame")
		}
		if err != nil {
			fc.fail(err)
			return
		}
		id := binary.BigEndian.Uint64(body[1:9])
		fc.mu.Lock()
		ch := fc.pending[id]
		delete(fc.pending, id)
		fc.mu.Unlock()
		if ch != nil {
			ch <- reply{status: body[0], payload: body[replyHeader:]}
		}
	}
}

// fail marks the connection broken, closes it and wakes every waiter.
func (fc *fwdConn) fail(err error) {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	if fc.err != nil {
		return
	}
	fc.err = err
	fc.c.Close()
	close(fc.dead)
}

// readFrame reads one length-prefixed frame.
func readFrame(r io.Reader) ([]byte, error) {
	var l [4]byte
	if _, err := io.ReadFull(r, l[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(l[:])
	if n > maxFrame {
		return nil, fmt.Errorf("frame of %d bytes, at most %d", n, maxFrame)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		return nil, err
	}
	return body, nil
}

// serveForward serves one forwarding connection from a peer: each request
// runs in its own goroutine (at most maxForwardInflight at once), so the
// leader's group commit sees them together.
func (n *Node) serveForward(c net.Conn) {
	defer c.Close()
	br := bufio.NewReader(c)
	w := newBatchWriter(c)
	sem := make(chan struct{}, maxForwardInflight)
	var wg sync.WaitGroup
	defer wg.Wait()
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		select {
		case <-n.closing:
			c.Close()
		case <-stop:
		}
	}()
	for {
		body, err := readFrame(br)
		if err != nil || len(body) < requestHeader {
			return
		}
		op, id := body[0], binary.BigEndian.Uint64(body[1:9])
		left := time.Duration(binary.BigEndian.Uint64(body[9:17]))
		payload := body[requestHeader:]
		select {
		case sem <- struct{}{}:
		case <-n.closing:
			return
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			ctx, cancel := context.Background(), context.CancelFunc(func() {})
			if left > 0 {
				ctx, cancel = context.WithTimeout(ctx, left)
			}
			status, out := n.handleForward(ctx, op, payload)
			cancel()
			var hdr [4 + replyHeader]byte
			binary.BigEndian.PutUint32(hdr[:4], uint32(replyHeader+len(out)))
			hdr[4] = status
			binary.BigEndian.PutUint64(hdr[5:], id)
			if err := w.write(hdr[:], out); err != nil {
				c.Close()
			}
		}()
	}
}

// handleForward runs one forwarded request on this node, which the peer
// believes is the leader. It never forwards again: a node that is not the
// leader answers ErrNotLeader and the peer retries with the leader it
// learns next.
func (n *Node) handleForward(ctx context.Context, op byte, payload []byte) (byte, []byte) {
	fail := func(err error) (byte, []byte) { return statusError, encodeError(err) }
	if op == opStatus {
		b, err := json.Marshal(n.Status())
		if err != nil {
			return fail(err)
		}
		return statusOK, b
	}
	if !n.isLeader() {
		return fail(notLeader())
	}
	switch op {
	case opApply:
		req, err := core.DecodeRequest(payload)
		if err != nil {
			return fail(err)
		}
		res, err := n.applyLocal(ctx, req.Command)
		if err != nil {
			return fail(err)
		}
		b, err := core.EncodeResult(res)
		if err != nil {
			return fail(fmt.Errorf("%w: encode result: %w", core.ErrNotApplied, err))
		}
		return statusOK, b
	case opReadIndex:
		idx, err := n.readIndex(ctx)
		if err != nil {
			return fail(err)
		}
		return statusOK, binary.BigEndian.AppendUint64(nil, idx)
	case opAddVoter, opRemove:
		var m member
		if err := json.Unmarshal(payload, &m); err != nil {
			return fail(fmt.Errorf("%w: %w", ErrInvalidMember, err))
		}
		var err error
		if op == opAddVoter {
			err = n.addVoterLocal(ctx, m)
		} else {
			err = n.removeLocal(ctx, m.ID)
		}
		if err != nil {
			return fail(err)
		}
		return statusOK, nil
	}
	return fail(fmt.Errorf("%w: unknown forwarding op %d", core.ErrInvalidCommand, op))
}

// forwardCall sends a request to the current leader, waiting for one to
// be known (bounded by ctx and ForwardWait) and following a leader change
// that happens meanwhile.
func (n *Node) forwardCall(ctx context.Context, op byte, payload []byte) ([]byte, error) {
	if n.fwd == nil {
		return nil, notLeader()
	}
	ctx, cancel := context.WithTimeout(ctx, n.cfg.Cluster.ForwardWait)
	defer cancel()
	for {
		address, err := n.leaderAddress(ctx)
		if err != nil {
			return nil, err
		}
		if address == "" {
			// This node became the leader meanwhile.
			return nil, errBecameLeader
		}
		r, err := n.fwd.call(ctx, address, op, payload)
		if err == nil && r.status == statusOK {
			return r.payload, nil
		}
		if err == nil {
			err = decodeError(r.payload)
			if !errors.Is(err, ErrNotLeader) {
				return nil, err
			}
		}
		// Not (or no longer) the leader, or the connection failed before
		// the request was sent: wait for the next leader and try again.
		// A request that was sent and whose connection broke has an unknown
		// fate and is not retried.
		if errors.Is(err, errForwardBroken) || ctx.Err() != nil {
			return nil, err
		}
		select {
		case <-time.After(20 * time.Millisecond):
		case <-ctx.Done():
			return nil, fmt.Errorf("%w: %w", core.ErrNotApplied, ctx.Err())
		case <-n.closing:
			return nil, errClosed()
		}
	}
}

// errBecameLeader tells forwardCall's caller to do the work locally.
var errBecameLeader = errors.New("this node is the leader")

// leaderAddress waits until a leader is known and returns its peer
// address, or "" when this node is the leader.
func (n *Node) leaderAddress(ctx context.Context) (string, error) {
	for {
		if n.isLeader() {
			return "", nil
		}
		if addr, id := n.raft.LeaderWithID(); addr != "" && string(id) != n.cfg.NodeID {
			return string(addr), nil
		}
		select {
		case <-time.After(20 * time.Millisecond):
		case <-ctx.Done():
			return "", fmt.Errorf("%w: no leader: %w", notLeader(), ctx.Err())
		case <-n.closing:
			return "", errClosed()
		}
	}
}

// batchWriter writes frames from many goroutines to one connection. A
// writer that sees others waiting leaves the flush to the last of them, so
// frames that are ready together go out in one write (one TLS record, one
// system call) instead of one each.
type batchWriter struct {
	waiting atomic.Int32
	mu      sync.Mutex
	bw      *bufio.Writer
}

func newBatchWriter(c io.Writer) *batchWriter {
	return &batchWriter{bw: bufio.NewWriterSize(c, 32<<10)}
}

// write writes the parts of one frame; the frame has been flushed, or
// will be by a writer waiting now, when it returns.
func (w *batchWriter) write(parts ...[]byte) error {
	w.waiting.Add(1)
	w.mu.Lock()
	defer w.mu.Unlock()
	w.waiting.Add(-1)
	for _, p := range parts {
		if _, err := w.bw.Write(p); err != nil {
			return err
		}
	}
	if w.waiting.Load() > 0 {
		return nil
	}
	return w.bw.Flush()
}
