package device

import (
	"context"
	"testing"
	"time"
)

func TestApplyContextsEndWithinTheTimeout(t *testing.T) {
	const timeout = time.Minute
	parent, cancel := context.WithCancel(context.Background())
	a := newApplyContexts(parent, timeout)
	for range 1000 {
		before := time.Now()
		ctx := a.get()
		after := time.Now()
		deadline, ok := ctx.Deadline()
		if !ok {
			t.Fatal("no deadline")
		}
		if deadline.After(after.Add(timeout)) || deadline.Before(before.Add(timeout-a.grain)) {
			t.Fatalf("deadline %v from now, want within %v of %v", time.Until(deadline), a.grain, timeout)
		}
	}
	ctx := a.get()
	cancel()
	select {
	case <-ctx.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("a context outlives its parent")
	}
}

func TestApplyContextsEndAtTheirDeadline(t *testing.T) {
	a := newApplyContexts(context.Background(), 20*time.Millisecond)
	ctx := a.get()
	select {
	case <-ctx.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the context did not end at its deadline")
	}
	if ctx.Err() != context.DeadlineExceeded {
		t.Fatalf("err %v", ctx.Err())
	}
	if next := a.get(); next.Err() != nil {
		t.Fatalf("a later request got an ended context: %v", next.Err())
	}
}
