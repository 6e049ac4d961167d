package core

import (
	"encoding/json"
	"testing"
	"time"
)

func TestSessionForgottenAfterTTL(t *testing.T) {
	s := New(Config{SessionTTL: time.Minute})
	tick := Request{ID: RequestID{Session: 5, Seq: 1}, At: t0, Command: &Tick{}}
	if res, err := s.Apply(tick); err != nil || res.Duplicate {
		t.Fatalf("first: %+v %v", res, err)
	}
	if res, _ := s.Apply(tick); !res.Duplicate {
		t.Fatal("a retry within the TTL was applied again")
	}
	// Another session's command after the TTL sweeps session 5 away.
	later := Request{ID: RequestID{Session: 6, Seq: 1}, At: t0.Add(2 * time.Minute), Command: &Tick{}}
	if _, err := s.Apply(later); err != nil {
		t.Fatal(err)
	}
	if res, _ := s.Apply(tick); res.Duplicate {
		t.Fatal("session 5 was remembered past its TTL")
	}
}

func TestSessionTableIsBounded(t *testing.T) {
	s := New(Config{MaxSessions: 4})
	for i := range 10 {
		req := Request{ID: RequestID{Session: SessionID(100 + i), Seq: 1}, At: t0.Add(time.Duration(i) * time.Second), Command: &Tick{}}
		if _, err := s.Apply(req); err != nil {
			t.Fatalf("session %d: %v", i, err)
		}
		if len(s.sessions) > 4 {
			t.Fatalf("%d sessions kept, limit 4", len(s.sessions))
		}
	}
	// The most recent session is still known; the oldest are forgotten.
	if res, _ := s.Apply(Request{ID: RequestID{Session: 109, Seq: 1}, At: t0.Add(time.Minute), Command: &Tick{}}); !res.Duplicate {
		t.Fatal("the newest session was forgotten")
	}
	if res, _ := s.Apply(Request{ID: RequestID{Session: 100, Seq: 1}, At: t0.Add(time.Minute), Command: &Tick{}}); res.Duplicate {
		t.Fatal("the oldest session was kept past the limit")
	}
}

func TestSessionWindow(t *testing.T) {
	var sess session
	for _, seq := range []uint64{1, 2, 5, 1000, 1004} {
		sess.mark(seq)
	}
	for seq, want := range map[uint64]bool{1: true, 2: true, 3: false, 4: false, 5: true, 999: false, 1000: true, 1003: false, 1004: true, 1005: false} {
		if got := sess.seen(seq); got != want {
			t.Errorf("seen(%d) = %v, want %v", seq, got, want)
		}
	}
	sess.mark(5000) // jumps past the window: everything older counts as seen
	if !sess.seen(1003) || sess.seen(4999) || !sess.seen(5000) {
		t.Error("window after a jump")
	}
}

func TestListViews(t *testing.T) {
	h := newHarness(t)
	h.rights("r", 1, fline("l", "cad", "1.0", 2))
	for _, n := range []int{3, 1, 2} {
		h.hello(n)
	}
	devs := h.s.Devices()
	if len(devs) != 3 || h.s.DeviceCount() != 3 || devs[0].ID != mac(1) || devs[2].ID != mac(3) || devs[0].Pool != "default" {
		t.Fatalf("devices %+v", devs)
	}
	props := h.s.Properties()
	if len(props) != len(propertyDefs) {
		t.Fatalf("%d properties, want %d", len(props), len(propertyDefs))
	}
	for _, p := range props {
		if p.Value != p.Default || p.Locked {
			t.Errorf("fresh property %s = %q (locked %v), want the default %q", p.Name, p.Value, p.Locked, p.Default)
		}
		if _, err := p.PropertyDef.normalize(p.Default); err != nil {
			t.Errorf("default of %s is invalid: %v", p.Name, err)
		}
	}
	// Results travel as JSON to the device and back.
	res := Result{Denied: DenyInsufficient}
	b, _ := json.Marshal(res)
	var back Result
	if err := json.Unmarshal(b, &back); err != nil || back.Denied != DenyInsufficient {
		t.Fatalf("denial round trip: %s %+v %v", b, back, err)
	}
}
