package device

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// applyContexts hands out the contexts that bound the store operations of
// capability requests and status. A context of its own per request costs
// a timer and its cancellation, a fair share of a checkout's CPU. Instead
// the requests that arrive within one grain share a context that ends
// timeout after the first of them arrived: none waits longer than
// timeout, none less than timeout minus the grain.
type applyContexts struct {
	parent  context.Context
	timeout time.Duration
	grain   time.Duration
	cur     atomic.Pointer[applyContext]
	mu      sync.Mutex // one new context at a time
}

type applyContext struct {
	ctx  context.Context
	made time.Time
	// cancel is not called: the context ends at its deadline, or with
	// parent when the handler closes.
	cancel context.CancelFunc
}

func newApplyContexts(parent context.Context, timeout time.Duration) *applyContexts {
	return &applyContexts{parent: parent, timeout: timeout, grain: min(10*time.Millisecond, timeout/100)}
}

// get returns a context that ends at most timeout from now.
func (a *applyContexts) get() context.Context {
	now := time.Now()
	if c := a.cur.Load(); c != nil && now.Sub(c.made) < a.grain {
		return c.ctx
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if c := a.cur.Load(); c != nil && now.Sub(c.made) < a.grain {
		return c.ctx
	}
	ctx, cancel := context.WithDeadline(a.parent, now.Add(a.timeout))
	a.cur.Store(&applyContext{ctx: ctx, made: now, cancel: cancel})
	return ctx
}
