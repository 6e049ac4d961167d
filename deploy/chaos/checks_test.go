package main

import (
	"strings"
	"testing"
)

// op builds a history record; ret 0 with unknown marks an abandoned call.
func op(client, device int, kind string, count int64, call, ret int64, out opOutput) record {
	return record{Client: client, Node: "tally1", Input: opInput{Device: device, Kind: kind, Count: count}, Output: out, Call: call, Return: ret}
}

var (
	unknown = opOutput{Unknown: true, Error: "context deadline exceeded"}
	granted = func(held int64) opOutput { return opOutput{Granted: true, Held: held} }
	denied  = func(held int64) opOutput { return opOutput{Held: held, Reason: "insufficient"} }
)

// staleLands is the history of the fault the session-order check exists
// for: device 0 gives up on a checkout of 3, returns on a new connection
// (acknowledged), and the abandoned checkout lands afterwards, so device
// 1's checkout of 2 is denied although device 0 holds nothing.
func staleLands(device1 opOutput) *fleet {
	return &fleet{devices: 2, history: []record{
		op(0, 0, opCheckout, 3, 1, 0, unknown),
		op(maxDevices, 0, opReturn, 0, 10, 20, granted(0)),
		op(1, 1, opCheckout, 2, 30, 40, device1),
		op(maxDevices, 0, opCheckout, 1, 50, 60, granted(1)),
	}}
}

func TestSessionOrderCatchesAStaleRequest(t *testing.T) {
	dir := t.TempDir()
	bad := staleLands(denied(0))
	if c := checkLinearizable(bad, 4, dir, 0, false); !c.OK {
		t.Fatalf("lenient check refused a history where the abandoned call may land late: %s", c.Detail)
	}
	c := checkLinearizable(bad, 4, dir, 0, true)
	if c.OK || !strings.Contains(c.Detail, "NOT linearizable") {
		t.Fatalf("session-order check passed a stale request landing after the device's next one: %s", c.Detail)
	}
	good := staleLands(granted(2))
	for _, order := range []bool{false, true} {
		if c := checkLinearizable(good, 4, dir, 0, order); !c.OK {
			t.Fatalf("session order %v: a legal history refused: %s", order, c.Detail)
		}
	}
}

func TestModelRefusesOverAllocation(t *testing.T) {
	f := &fleet{devices: 2, history: []record{
		op(0, 0, opCheckout, 3, 1, 2, granted(3)),
		op(1, 1, opCheckout, 2, 3, 4, granted(2)),
	}}
	if c := checkLinearizable(f, 4, t.TempDir(), 0, true); c.OK {
		t.Fatalf("5 granted of a capacity of 4 passed: %s", c.Detail)
	}
}

func TestExpectedHeld(t *testing.T) {
	f := &fleet{devices: 3, history: []record{
		op(0, 0, opCheckout, 2, 1, 2, granted(2)),
		op(0, 0, opCheckout, 1, 3, 0, unknown), // after the last known: may land
		op(1, 1, opCheckout, 3, 1, 0, unknown), // before the last known: must not
		op(maxDevices+1, 1, opReturn, 0, 5, 6, granted(0)),
	}}
	got := f.expectedHeld()
	want := map[int][]int64{0: {1, 2}, 1: {0}, 2: {0}}
	for d, counts := range want {
		if len(got[d]) != len(counts) {
			t.Fatalf("device %d may hold %v, want %v", d, got[d], counts)
		}
		for _, c := range counts {
			if !got[d][c] {
				t.Fatalf("device %d may hold %v, want %v", d, got[d], counts)
			}
		}
	}
}

func TestUndoneNamesTheAbandonedCall(t *testing.T) {
	f := &fleet{devices: 1, history: []record{
		op(0, 0, opCheckout, 2, 1, 2, granted(2)),
		op(0, 0, opCheckout, 3, 3, 0, unknown),
		op(maxDevices, 0, opReturn, 0, 10, 20, granted(0)),
		op(maxDevices, 0, opCheckout, 1, 30, 40, denied(3)),
	}}
	u := f.undone()
	if len(u) != 1 || !strings.Contains(u[0], "given up on checkout 3") {
		t.Fatalf("undone %q", u)
	}
	if u := staleLands(granted(2)).undone(); len(u) != 0 {
		t.Fatalf("a legal history reported undone: %q", u)
	}
}
