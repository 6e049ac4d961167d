package raft

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"

	hraft "github.com/hashicorp/raft"

	"github.com/tallyhq/tally/core"
)

// fsm feeds log entries to a core.State in log order. Apply, Snapshot and
// Restore run on raft's FSM goroutine, one at a time; reads take mu's read
// lock from any goroutine.
type fsm struct {
	cfg     core.Config
	observe func(core.Request, core.Result)

	mu    sync.RWMutex
	state *core.State

	// applied is the index of the last entry applied (or restored).
	applied atomic.Uint64
	// stateNow is the state's clock in Unix nanoseconds, for the proposer.
	stateNow atomic.Int64

	// waiters wait for the applied index to reach theirs (waitApplied).
	waitMu  sync.Mutex
	waiters []appliedWaiter

	batches   atomic.Uint64 // entries applied
	requests  atomic.Uint64 // requests in them
	lastBatch atomic.Uint64 // requests in the latest entry

	// Scratch reused across entries; only the FSM goroutine touches it.
	parts [][]byte
	reqs  []core.Request
	errs  []error
}

var _ hraft.FSM = (*fsm)(nil)

// result is the outcome of one request of an entry.
type result struct {
	res core.Result
	err error
}

// entryResponse is what Apply returns to the proposer of an entry: either
// an error for the whole entry or one result per request.
type entryResponse struct {
	err     error
	results []result
}

func newFSM(cfg core.Config, observe func(core.Request, core.Result)) *fsm {
	f := &fsm{cfg: cfg, observe: observe, state: core.New(cfg)}
	f.stateNow.Store(f.state.Now().UnixNano())
	return f
}

// appliedWaiter is a read waiting for the state to reach an index.
type appliedWaiter struct {
	index uint64
	done  chan struct{}
}

// waitApplied waits until the applied index is at least index.
func (f *fsm) waitApplied(ctx context.Context, index uint64) error {
	if f.applied.Load() >= index {
		return nil
	}
	w := appliedWaiter{index: index, done: make(chan struct{})}
	f.waitMu.Lock()
	f.waiters = append(f.waiters, w)
	f.waitMu.Unlock()
	f.wake() // the index may have moved before the waiter was listed
	select {
	case <-w.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// wake releases the waiters whose index has been applied.
func (f *fsm) wake() {
	applied := f.applied.Load()
	f.waitMu.Lock()
	defer f.waitMu.Unlock()
	kept := f.waiters[:0]
	for _, w := range f.waiters {
		if w.index <= applied {
			close(w.done)
		} else {
			kept = append(kept, w)
		}
	}
	clear(f.waiters[len(kept):])
	f.waiters = kept
}

// Apply applies one entry. An entry at or below the applied index was
// applied before the snapshot that restored the state and is skipped.
func (f *fsm) Apply(l *hraft.Log) any {
	if l.Index <= f.applied.Load() {
		return &entryResponse{err: fmt.Errorf("%w: entry %d was applied before", core.ErrNotApplied, l.Index)}
	}
	parts, err := splitEntry(l.Data, f.parts)
	if err != nil {
		f.applied.Store(l.Index)
		return &entryResponse{err: err}
	}
	f.parts = parts
	f.decode(parts)
	results := make([]result, len(parts))
	f.mu.Lock()
	for i := range f.reqs {
		if f.errs[i] != nil {
			results[i].err = f.errs[i]
			continue
		}
		results[i].res, results[i].err = f.state.Apply(f.reqs[i])
	}
	f.applied.Store(l.Index)
	f.stateNow.Store(f.state.Now().UnixNano())
	f.mu.Unlock()
	f.wake()

	f.batches.Add(1)
	f.requests.Add(uint64(len(results)))
	f.lastBatch.Store(uint64(len(results)))
	if f.observe != nil {
		for i := range results {
			if results[i].err == nil {
				f.observe(f.reqs[i], results[i].res)
			}
		}
	}
	clear(f.reqs) // drop references to commands
	clear(f.parts)
	return &entryResponse{results: results}
}

// parallelDecode is the smallest entry whose requests are decoded on
// several cores; below it, starting goroutines costs more than it saves.
const parallelDecode = 64

// decode fills f.reqs and f.errs from the encoded requests of an entry.
// Decoding is independent per request, so a large entry is split across
// the available cores; the results do not depend on how it is split.
func (f *fsm) decode(parts [][]byte) {
	f.reqs = slices.Grow(f.reqs[:0], len(parts))[:len(parts)]
	f.errs = slices.Grow(f.errs[:0], len(parts))[:len(parts)]
	decodeRange := func(lo, hi int) {
		for i := lo; i < hi; i++ {
			f.reqs[i], f.errs[i] = core.DecodeRequest(parts[i])
		}
	}
	workers := min(runtime.GOMAXPROCS(0), len(parts)/(parallelDecode/2))
	if len(parts) < parallelDecode || workers < 2 {
		decodeRange(0, len(parts))
		return
	}
	var wg sync.WaitGroup
	chunk := (len(parts) + workers - 1) / workers
	for lo := chunk; lo < len(parts); lo += chunk {
		wg.Go(func() { decodeRange(lo, min(lo+chunk, len(parts))) })
	}
	decodeRange(0, chunk)
	wg.Wait()
}

// read runs fn on the state under the read lock.
func (f *fsm) read(fn func(*core.State) error) error {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return fn(f.state)
}

// Snapshot captures the state and the applied index. The state is encoded
// here, on the FSM goroutine, so writes wait only for the encoding and not
// for the disk.
func (f *fsm) Snapshot() (hraft.FSMSnapshot, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	data, err := f.state.Snapshot()
	if err != nil {
		return nil, fmt.Errorf("snapshot state: %w", err)
	}
	return &fsmSnapshot{applied: f.applied.Load(), state: data}, nil
}

// Restore replaces the state and the applied index with a snapshot's.
func (f *fsm) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		return fmt.Errorf("read snapshot: %w", err)
	}
	applied, body, err := parseSnapshot(data)
	if err != nil {
		return err
	}
	st, err := core.Restore(f.cfg, body)
	if err != nil {
		return fmt.Errorf("restore snapshot at index %d: %w", applied, err)
	}
	f.mu.Lock()
	f.state = st
	f.applied.Store(applied)
	f.wake()
	f.stateNow.Store(st.Now().UnixNano())
	f.mu.Unlock()
	return nil
}

// Snapshot file layout: magic, format version (uint16), applied index
// (uint64), then the state as core.State.Snapshot wrote it.
const (
	snapshotMagic   = "TALLYSNP"
	snapshotVersion = 1
	snapshotHeader  = len(snapshotMagic) + 2 + 8
)

type fsmSnapshot struct {
	applied uint64
	state   []byte
}

// Persist writes the header and the state to the sink.
func (s *fsmSnapshot) Persist(sink hraft.SnapshotSink) error {
	var hdr [snapshotHeader]byte
	copy(hdr[:], snapshotMagic)
	binary.BigEndian.PutUint16(hdr[len(snapshotMagic):], snapshotVersion)
	binary.BigEndian.PutUint64(hdr[len(snapshotMagic)+2:], s.applied)
	if _, err := sink.Write(hdr[:]); err != nil {
		sink.Cancel()
		return fmt.Errorf("write snapshot: %w", err)
	}
	if _, err := sink.Write(s.state); err != nil {
		sink.Cancel()
		return fmt.Errorf("write snapshot: %w", err)
	}
	return sink.Close()
}

// Release is a no-op: the snapshot holds its own copy of the state.
func (s *fsmSnapshot) Release() {}

// parseSnapshot checks a snapshot's header and returns its applied index and
// the state bytes.
func parseSnapshot(data []byte) (uint64, []byte, error) {
	if len(data) < snapshotHeader || !bytes.Equal(data[:len(snapshotMagic)], []byte(snapshotMagic)) {
		return 0, nil, fmt.Errorf("%w: no tally snapshot header", ErrSnapshotFormat)
	}
	if v := binary.BigEndian.Uint16(data[len(snapshotMagic):]); v != snapshotVersion {
		return 0, nil, fmt.Errorf("%w: version %d, this server reads %d", ErrSnapshotFormat, v, snapshotVersion)
	}
	return binary.BigEndian.Uint64(data[len(snapshotMagic)+2:]), data[snapshotHeader:], nil
}
