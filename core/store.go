package core

import (
	"context"
	"errors"
)

// Store is the state as the network layers see it: a replicated log in
// front of a State. Package raft implements it; package transport serves it.
// Neither knows the other.
type Store interface {
	// Apply proposes c, waits until it is applied in log order, and returns
	// its result. The store stamps the leader's time and a request ID.
	// Errors from the state wrap the sentinels of this package; an error
	// wrapping ErrNotApplied means the command may not have been applied
	// (timeout, shutdown, lost leadership) and is safe to retry.
	Apply(ctx context.Context, c Command) (Result, error)
	// Read runs fn on a state that reflects every command acknowledged
	// before Read was called (a linearizable read). fn must not keep
	// references into the state or change it.
	Read(ctx context.Context, fn func(*State) error) error
}

// ErrNotApplied is wrapped when a store cannot say that a command was
// applied. The caller may retry: commands state an outcome (the count a
// device holds, the reservation groups, a property's value) rather than a
// step, so applying one twice leaves the state as applying it once; a
// retried rights load may be refused as stale because the first one took.
var ErrNotApplied = errors.New("command not applied")
