package raft

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	hraft "github.com/hashicorp/raft"

	"github.com/tallyhq/tally/core"
)

func TestApplyReadRoundTrip(t *testing.T) {
	n := open(t, t.TempDir(), nil)
	if st := n.Status(); st.State != "Leader" || st.Leader != "node-1" || st.NodeID != "node-1" {
		t.Fatalf("status after open: %+v", st)
	}
	apply(t, n, rights(10))
	dev := device(t, "pc-1")
	apply(t, n, hello(dev))
	res := apply(t, n, checkout(dev, "cad", 3))
	if res.Denied != core.NotDenied || res.Grant.Count != 3 {
		t.Fatalf("checkout result %+v", res)
	}
	err := n.Read(context.Background(), func(s *core.State) error {
		d, err := s.Device(dev)
		if err != nil {
			return err
		}
		if len(d.Leases) != 1 || d.Leases[0].Count != 3 {
			return fmt.Errorf("leases %+v", d.Leases)
		}
		if f := s.Features(); f[0].Used != 3 {
			return fmt.Errorf("features %+v", f)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if st := n.Status(); st.AppliedIndex == 0 || st.LastIndex < st.AppliedIndex {
		t.Fatalf("status %+v", st)
	}
}

func TestStateErrorsAreReturnedAsIs(t *testing.T) {
	n := open(t, t.TempDir(), nil)
	apply(t, n, rights(10))
	_, err := n.Apply(context.Background(), checkout(device(t, "stranger"), "cad", 1))
	if !errors.Is(err, core.ErrUnknownDevice) || errors.Is(err, core.ErrNotApplied) {
		t.Fatalf("checkout by an unknown device: %v", err)
	}
	_, err = n.Apply(context.Background(), &core.SetProperty{Name: "no.such", Value: "1"})
	if !errors.Is(err, core.ErrUnknownProperty) {
		t.Fatalf("unknown property: %v", err)
	}
	dev := device(t, "pc-1")
	apply(t, n, hello(dev))
	if res := apply(t, n, checkout(dev, "cad", 11)); res.Denied != core.DenyInsufficient {
		t.Fatalf("over-count checkout: %+v", res)
	}
}

func TestResultsMatchCore(t *testing.T) {
	n := open(t, t.TempDir(), func(c *Config) { c.Now = func() time.Time { return t0 } })
	a, b, c := device(t, "a"), device(t, "b"), device(t, "c")
	cmds := []core.Command{
		rights(100), hello(a), hello(b), hello(c),
		checkout(a, "cad", 40), checkout(b, "cad", 70), checkout(b, "cad", 60),
		checkout(c, "viewer", 103), checkout(a, "viewer", 3), checkout(c, "viewer", 1),
		checkout(a, "cad", 0), checkout(device(t, "d"), "cad", 1),
		&core.SetProperty{Name: "licensing.renewInterval", Value: "50"}, checkout(b, "cad", 60),
		&core.DropDevice{Device: c}, &core.SetProperty{Name: "server.allowDeviceDrop", Value: "true"},
		&core.DropDevice{Device: c}, &core.Tick{},
	}
	waitLevel(t, n, core.Level)
	alone := core.New(core.Config{})
	cmds = append([]core.Command{&core.RaiseLevel{Level: core.Level}}, cmds...)
	for i, cmd := range cmds {
		got, gotErr := n.Apply(context.Background(), cmd)
		want, wantErr := alone.Apply(core.Request{ID: core.RequestID{Session: 1, Seq: uint64(i + 1)}, At: t0, Command: cmd})
		if fmt.Sprint(gotErr) != fmt.Sprint(wantErr) {
			t.Fatalf("command %d (%s): error %v, core alone %v", i, cmd.Type(), gotErr, wantErr)
		}
		gj, _ := json.Marshal(got)
		wj, _ := json.Marshal(want)
		if string(gj) != string(wj) {
			t.Fatalf("command %d (%s): result %s, core alone %s", i, cmd.Type(), gj, wj)
		}
	}
	wantView, err := viewOf(alone)
	if err != nil {
		t.Fatal(err)
	}
	wj, _ := json.MarshalIndent(wantView, "", " ")
	if got := readView(t, n); got != string(wj) {
		t.Fatalf("views differ:\nnode: %s\ncore: %s", got, wj)
	}
}

func TestConcurrentAppliesShareLogEntries(t *testing.T) {
	n := open(t, t.TempDir(), nil)
	apply(t, n, rights(1_000_000))
	const workers, each = 64, 20
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	before := metric(t, n, "tally_raft_requests_applied_total")
	beforeBatches := metric(t, n, "tally_raft_batches_applied_total")
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			dev := device(t, devName(w))
			if _, err := n.Apply(context.Background(), hello(dev)); err != nil {
				errs <- err
				return
			}
			for i := range each {
				res, err := n.Apply(context.Background(), checkout(dev, "cad", int64(i%3+1)))
				if err == nil && res.Grant.Count != int64(i%3+1) {
					err = fmt.Errorf("device %s got %+v", dev, res.Grant)
				}
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	requests := metric(t, n, "tally_raft_requests_applied_total") - before
	batches := metric(t, n, "tally_raft_batches_applied_total") - beforeBatches
	if requests < workers*(each+1) {
		t.Fatalf("%v requests applied, want at least %d", requests, workers*(each+1))
	}
	if batches >= requests {
		t.Fatalf("%v requests took %v log entries: no group commit", requests, batches)
	}
	t.Logf("%v requests in %v entries (mean %.1f)", requests, batches, requests/batches)
	var used int64
	err := n.Read(context.Background(), func(s *core.State) error {
		for _, d := range s.Devices() {
			dd, err := s.Device(d.ID)
			if err != nil {
				return err
			}
			for _, l := range dd.Leases {
				used += l.Count
			}
		}
		if f := s.Features()[0]; f.Used != used {
			return fmt.Errorf("feature used %d, devices hold %d", f.Used, used)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestRestartKeepsState(t *testing.T) {
	dir := t.TempDir()
	n := open(t, dir, nil)
	apply(t, n, rights(50))
	for i := range 8 {
		dev := device(t, devName(i))
		apply(t, n, hello(dev))
		apply(t, n, checkout(dev, "cad", int64(i+1)))
		if i%2 == 0 {
			apply(t, n, checkout(dev, "viewer", 2))
		}
	}
	apply(t, n, &core.SetProperty{Name: "licensing.renewInterval", Value: "40"})
	apply(t, n, &core.SetProperty{Name: "server.allowDeviceDrop", Value: "true"})
	before := readView(t, n)
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}

	n = open(t, dir, nil)
	if after := readView(t, n); after != before {
		t.Fatalf("state changed over a restart:\nbefore: %s\nafter: %s", before, after)
	}
	dev := device(t, devName(0))
	if res := apply(t, n, checkout(dev, "cad", 5)); res.Grant.Count != 5 {
		t.Fatalf("checkout after restart: %+v", res)
	}
}

// TestSnapshotRestart takes snapshots between writes and checks that a
// restart restores the state and applies none of what the snapshot holds
// again.
func TestSnapshotRestart(t *testing.T) {
	dir := t.TempDir()
	obs := &observer{}
	n := open(t, dir, func(c *Config) { c.Observe = obs.observe })
	apply(t, n, rights(100))
	for i := range 10 {
		dev := device(t, devName(i))
		apply(t, n, hello(dev))
		apply(t, n, checkout(dev, "cad", 2))
	}
	if err := n.snapshot(); err != nil {
		t.Fatalf("first snapshot: %v", err)
	}
	for i := range 5 {
		apply(t, n, checkout(device(t, devName(i)), "viewer", 1))
	}
	if err := n.snapshot(); err != nil {
		t.Fatalf("second snapshot: %v", err)
	}
	session := n.session
	lastInSnapshot := n.seq
	for i := 5; i < 10; i++ {
		apply(t, n, checkout(device(t, devName(i)), "cad", 4))
	}
	after := obs.of(session)
	before := readView(t, n)
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}

	obs2 := &observer{}
	n = open(t, dir, func(c *Config) { c.Observe = obs2.observe })
	if got := readView(t, n); got != before {
		t.Fatalf("state changed over a restart:\nbefore: %s\nafter: %s", before, got)
	}
	replayed := obs2.of(session)
	want := after[len(after)-5:]
	if fmt.Sprint(replayed) != fmt.Sprint(want) {
		t.Fatalf("replayed %v, want exactly the requests after the snapshot %v", replayed, want)
	}
	for _, seq := range replayed {
		if seq <= lastInSnapshot {
			t.Fatalf("request %d, held by the snapshot, was applied again", seq)
		}
	}

	// A snapshot taken after the last write leaves nothing to replay.
	session2 := n.session
	apply(t, n, checkout(device(t, devName(0)), "cad", 7))
	if err := n.snapshot(); err != nil {
		t.Fatalf("third snapshot: %v", err)
	}
	before = readView(t, n)
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	obs3 := &observer{}
	n = open(t, dir, func(c *Config) { c.Observe = obs3.observe })
	if got := readView(t, n); got != before {
		t.Fatalf("state changed over a restart:\nbefore: %s\nafter: %s", before, got)
	}
	if seqs := append(obs3.of(session), obs3.of(session2)...); len(seqs) != 0 {
		t.Fatalf("requests %v were applied again after a restart from a snapshot", seqs)
	}
}

func TestMalformedEntries(t *testing.T) {
	n := open(t, t.TempDir(), nil)
	apply(t, n, rights(10))
	dev := device(t, "pc-1")
	apply(t, n, hello(dev))
	good, err := core.EncodeRequest(core.Request{ID: core.RequestID{Session: 99, Seq: 1}, At: t0, Command: checkout(dev, "cad", 2)})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		entry []byte
		want  []error // nil: the whole entry fails with ErrMalformedEntry
	}{
		{"garbage", []byte("garbage"), nil},
		{"empty", []byte{}, nil},
		{"format only", []byte{entryFormat}, nil},
		{"cut short", []byte{entryFormat, 50, '{'}, nil},
		{"huge length", []byte{entryFormat, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, nil},
		{"bad request among good", appendRequest(appendRequest(nil, []byte(`{"nonsense":1}`)), good), []error{core.ErrInvalidCommand, nil}},
		{"unknown command", appendRequest(nil, []byte(`{"session":5,"seq":1,"at":0,"type":"launch"}`)), []error{core.ErrUnknownCommand}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := n.raft.Apply(tc.entry, 0)
			if err := f.Error(); err != nil {
				t.Fatalf("raft apply: %v", err)
			}
			resp, ok := f.Response().(*entryResponse)
			if !ok {
				t.Fatalf("response %T", f.Response())
			}
			if tc.want == nil {
				if !errors.Is(resp.err, ErrMalformedEntry) {
					t.Fatalf("entry error %v, want %v", resp.err, ErrMalformedEntry)
				}
				return
			}
			if resp.err != nil || len(resp.results) != len(tc.want) {
				t.Fatalf("response %+v", resp)
			}
			for i, want := range tc.want {
				if got := resp.results[i].err; (want == nil) != (got == nil) || (want != nil && !errors.Is(got, want)) {
					t.Fatalf("request %d: error %v, want %v", i, got, want)
				}
			}
		})
	}
	if res := apply(t, n, checkout(dev, "cad", 3)); res.Grant.Count != 3 {
		t.Fatalf("checkout after malformed entries: %+v", res)
	}
	// Raft records its applied index just after the FSM returns; wait for
	// the two to meet.
	for i := 0; n.Status().AppliedIndex != n.raft.AppliedIndex(); i++ {
		if i == 10000 {
			t.Fatalf("applied index %d, raft says %d", n.Status().AppliedIndex, n.raft.AppliedIndex())
		}
		time.Sleep(time.Millisecond)
	}
}

func TestTicksExpireLeases(t *testing.T) {
	clock := newTestClock()
	n := open(t, t.TempDir(), func(c *Config) {
		c.Now = clock.Now
		c.TickInterval = 5 * time.Millisecond
	})
	apply(t, n, rights(10))
	dev := device(t, "pc-1")
	apply(t, n, hello(dev))
	co := checkout(dev, "cad", 4)
	co.Borrow = time.Minute
	if res := apply(t, n, co); res.Grant.Expiry != t0.Add(time.Minute) {
		t.Fatalf("grant %+v", res.Grant)
	}
	clock.Advance(2 * time.Minute)
	// No command follows: only the leader's ticks can expire the lease.
	for range 2000 {
		var used int64
		err := n.Read(context.Background(), func(s *core.State) error {
			used = s.Features()[0].Used
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if used == 0 {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatal("the lease did not expire by ticks")
}

func TestClockNeverGoesBack(t *testing.T) {
	clock := newTestClock()
	n := open(t, t.TempDir(), func(c *Config) { c.Now = clock.Now })
	apply(t, n, rights(10))
	clock.Advance(-time.Hour)
	apply(t, n, &core.Tick{})
	err := n.Read(context.Background(), func(s *core.State) error {
		if !s.Now().Equal(t0) {
			return fmt.Errorf("state clock %s, want %s", s.Now(), t0)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestCanceledAndClosed(t *testing.T) {
	n := open(t, t.TempDir(), nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := n.Apply(ctx, &core.Tick{}); !errors.Is(err, core.ErrNotApplied) || !errors.Is(err, context.Canceled) {
		t.Fatalf("apply with canceled context: %v", err)
	}
	if err := n.Read(ctx, func(*core.State) error { return nil }); err != nil && !errors.Is(err, core.ErrNotApplied) {
		t.Fatalf("read with canceled context: %v", err)
	}
	if _, err := n.Apply(context.Background(), nil); !errors.Is(err, core.ErrInvalidCommand) {
		t.Fatalf("nil command: %v", err)
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	if err := n.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
	_, err := n.Apply(context.Background(), &core.Tick{})
	if !errors.Is(err, ErrClosed) || !errors.Is(err, core.ErrNotApplied) {
		t.Fatalf("apply after close: %v", err)
	}
	err = n.Read(context.Background(), func(*core.State) error { return nil })
	if !errors.Is(err, ErrNotLeader) || !errors.Is(err, core.ErrNotApplied) {
		t.Fatalf("read after close: %v", err)
	}
	if st := n.Status(); st.State != hraft.Shutdown.String() {
		t.Fatalf("status after close: %+v", st)
	}
}

// TestCloseAnswersWaiters closes the node under load: every Apply returns,
// either applied or with an error wrapping core.ErrNotApplied.
func TestCloseAnswersWaiters(t *testing.T) {
	n := open(t, t.TempDir(), nil)
	apply(t, n, rights(1000))
	var wg sync.WaitGroup
	errs := make(chan error, 32)
	for w := range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			dev := device(t, devName(w))
			for i := range 200 {
				var c core.Command = hello(dev)
				if i > 0 {
					c = checkout(dev, "cad", int64(i%2+1))
				}
				if _, err := n.Apply(context.Background(), c); err != nil {
					if !errors.Is(err, core.ErrNotApplied) {
						errs <- err
					}
					return
				}
			}
		}()
	}
	time.Sleep(20 * time.Millisecond)
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("apply during close: %v", err)
	}
}

func TestOpenRefusesBadConfig(t *testing.T) {
	if _, err := Open(Config{NodeID: "x"}); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("no data dir: %v", err)
	}
	if _, err := Open(Config{DataDir: t.TempDir()}); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("no node id: %v", err)
	}
}
