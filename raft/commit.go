package raft

import (
	"context"
	"errors"
	"fmt"
	"time"

	hraft "github.com/hashicorp/raft"

	"github.com/tallyhq/tally/core"
)

// Group commit. Callers of Apply queue their command and wait. One batcher
// goroutine takes everything queued (up to MaxBatch requests and
// maxEntryBytes), stamps it, encodes one log entry and hands it to raft;
// while up to maxInflight entries are being written and applied, the next
// batch fills. One completer goroutine waits for the entries in log order
// and answers each waiter. Raft itself writes the entries it has in hand
// with one fsync, so the number of fsyncs does not grow with the number of
// requests.

// maxInflight bounds the entries proposed and not yet applied.
const maxInflight = 4

// pending is one Apply call waiting for its result.
type pending struct {
	ctx   context.Context
	cmd   core.Command
	reply chan result // buffered: the batcher never blocks on a waiter
}

// batch is one proposed log entry and the waiters for its requests.
type batch struct {
	waiters []*pending
	future  hraft.ApplyFuture
}

func (n *Node) getPending(ctx context.Context, c core.Command) *pending {
	p, _ := n.pendings.Get().(*pending)
	if p == nil {
		p = &pending{reply: make(chan result, 1)}
	}
	p.ctx, p.cmd = ctx, c
	return p
}

// putPending recycles p once its reply has been received.
func (n *Node) putPending(p *pending) {
	p.ctx, p.cmd = nil, nil
	n.pendings.Put(p)
}

// Apply proposes c, waits until it is applied and returns its result. The
// state's refusals are returned as they are; an error wrapping
// core.ErrNotApplied means the command may or may not have been applied.
func (n *Node) Apply(ctx context.Context, c core.Command) (core.Result, error) {
	if c == nil {
		return core.Result{}, fmt.Errorf("%w: no command", core.ErrInvalidCommand)
	}
	if n.fwd != nil && !n.isLeader() {
		return n.applyForward(ctx, c)
	}
	return n.applyLocal(ctx, c)
}

// applyLocal proposes c through this node's group commit.
func (n *Node) applyLocal(ctx context.Context, c core.Command) (core.Result, error) {
	if c == nil {
		return core.Result{}, fmt.Errorf("%w: no command", core.ErrInvalidCommand)
	}
	p := n.getPending(ctx, c)
	select {
	case n.queue <- p:
	case <-n.closing:
		return core.Result{}, errClosed()
	case <-ctx.Done():
		return core.Result{}, fmt.Errorf("%w: %w", core.ErrNotApplied, ctx.Err())
	}
	select {
	case r := <-p.reply:
		n.putPending(p)
		return r.res, r.err
	case <-ctx.Done():
		return core.Result{}, fmt.Errorf("%w: %w", core.ErrNotApplied, ctx.Err())
	case <-n.stopped:
		return core.Result{}, errClosed()
	}
}

func errClosed() error { return fmt.Errorf("%w: %w", ErrClosed, core.ErrNotApplied) }

// runBatcher turns queued commands into log entries until the node closes;
// then it answers what is still queued with ErrClosed.
func (n *Node) runBatcher() {
	defer n.wg.Done()
	defer close(n.inflight)
	var carry *pending // the request that did not fit the previous batch
	for {
		select {
		case n.slots <- struct{}{}:
		case <-n.closing:
			n.drain(carry)
			return
		}
		first := carry
		carry = nil
		if first == nil {
			select {
			case first = <-n.queue:
			case <-n.closing:
				n.drain(nil)
				return
			}
		}
		b := &batch{waiters: make([]*pending, 0, min(len(n.queue)+1, n.cfg.MaxBatch))}
		entry := make([]byte, 0, 256*cap(b.waiters))
		at := n.stamp()
		entry, carry = n.add(b, entry, first, at)
	fill:
		for carry == nil && len(b.waiters) < n.cfg.MaxBatch {
			select {
			case p := <-n.queue:
				entry, carry = n.add(b, entry, p, at)
			default:
				break fill
			}
		}
		if len(b.waiters) == 0 {
			<-n.slots
			continue
		}
		b.future = n.raft.Apply(entry, 0)
		n.inflight <- b
	}
}

// add encodes p's request into entry and adds p to b. A request whose
// caller has given up is dropped unproposed; one that cannot be encoded is
// answered at once. When entry cannot take the request, add returns it as
// the carry for the next batch.
func (n *Node) add(b *batch, entry []byte, p *pending, at time.Time) ([]byte, *pending) {
	if p.ctx.Err() != nil {
		p.reply <- result{err: fmt.Errorf("%w: %w", core.ErrNotApplied, p.ctx.Err())}
		return entry, nil
	}
	n.seq++
	data, err := core.EncodeRequest(core.Request{ID: core.RequestID{Session: n.session, Seq: n.seq}, At: at, Command: p.cmd})
	if err == nil && len(data) > core.MaxRequestBytes {
		err = fmt.Errorf("%w: %s is %d bytes, at most %d", core.ErrInvalidCommand, p.cmd.Type(), len(data), core.MaxRequestBytes)
	}
	if err != nil {
		p.reply <- result{err: err}
		return entry, nil
	}
	if len(b.waiters) > 0 && len(entry)+len(data)+10 > maxEntryBytes {
		n.seq-- // restamped in the next batch
		return entry, p
	}
	b.waiters = append(b.waiters, p)
	return appendRequest(entry, data), nil
}

// stamp returns the leader clock for the next batch: the configured clock,
// but never earlier than the time already stamped or applied.
func (n *Node) stamp() time.Time {
	at := n.cfg.Now()
	if applied := time.Unix(0, n.fsm.stateNow.Load()); at.Before(applied) {
		at = applied
	}
	if at.Before(n.lastAt) {
		at = n.lastAt
	}
	n.lastAt = at
	return at
}

// drain answers every queued request with ErrClosed.
func (n *Node) drain(carry *pending) {
	if carry != nil {
		carry.reply <- result{err: errClosed()}
	}
	for {
		select {
		case p := <-n.queue:
			p.reply <- result{err: errClosed()}
		default:
			return
		}
	}
}

// runCompleter answers the waiters of each entry, in log order, once raft
// has applied it.
func (n *Node) runCompleter() {
	defer n.wg.Done()
	for b := range n.inflight {
		n.complete(b)
		<-n.slots
	}
}

func (n *Node) complete(b *batch) {
	if err := n.wait(b.future); err != nil {
		n.failAll(b, raftError(err))
		return
	}
	resp, ok := b.future.Response().(*entryResponse)
	switch {
	case !ok:
		n.failAll(b, fmt.Errorf("%w: unexpected apply response %T", core.ErrNotApplied, b.future.Response()))
	case resp.err != nil:
		n.failAll(b, resp.err)
	case len(resp.results) != len(b.waiters):
		n.failAll(b, fmt.Errorf("%w: %d results for %d requests", core.ErrNotApplied, len(resp.results), len(b.waiters)))
	default:
		for i, p := range b.waiters {
			p.reply <- resp.results[i]
		}
	}
}

// wait returns f's error, or ErrRaftShutdown once raft has shut down
// without answering f: raft leaves the futures of entries that were
// committed but not yet applied unanswered when it stops.
func (n *Node) wait(f hraft.Future) error {
	done := make(chan error, 1)
	go func() { done <- f.Error() }()
	select {
	case err := <-done:
		return err
	case <-n.raftDown:
		select {
		case err := <-done:
			return err
		default:
			return hraft.ErrRaftShutdown
		}
	}
}

func (n *Node) failAll(b *batch, err error) {
	for _, p := range b.waiters {
		p.reply <- result{err: err}
	}
}

// raftError wraps an error from raft so that callers see core.ErrNotApplied,
// and ErrNotLeader or ErrClosed where they apply.
func raftError(err error) error {
	switch {
	case errors.Is(err, hraft.ErrNotLeader), errors.Is(err, hraft.ErrLeadershipLost),
		errors.Is(err, hraft.ErrLeadershipTransferInProgress):
		return fmt.Errorf("%w: %w: %w", ErrNotLeader, core.ErrNotApplied, err)
	case errors.Is(err, hraft.ErrRaftShutdown):
		return fmt.Errorf("%w: %w", ErrClosed, core.ErrNotApplied)
	}
	return fmt.Errorf("%w: %w", core.ErrNotApplied, err)
}
