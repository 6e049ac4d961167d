package raft

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tallyhq/tally/core"
	"github.com/tallyhq/tally/core/hostid"
	"github.com/tallyhq/tally/core/version"
)

// t0 is the start of the test clocks.
var t0 = time.Date(2026, 3, 2, 8, 0, 0, 0, time.UTC)

// testClock is a clock the test moves by hand.
type testClock struct{ ns atomic.Int64 }

func newTestClock() *testClock {
	c := &testClock{}
	c.ns.Store(t0.UnixNano())
	return c
}

func (c *testClock) Now() time.Time          { return time.Unix(0, c.ns.Load()).UTC() }
func (c *testClock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

// open opens a node in dir and closes it when the test ends.
func open(t testing.TB, dir string, change func(*Config)) *Node {
	t.Helper()
	cfg := Config{DataDir: dir, NodeID: "node-1", TickInterval: time.Hour}
	if change != nil {
		change(&cfg)
	}
	n, err := Open(cfg)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

func apply(t testing.TB, n *Node, c core.Command) core.Result {
	t.Helper()
	res, err := n.Apply(context.Background(), c)
	if err != nil {
		t.Fatalf("%s: %v", c.Type(), err)
	}
	return res
}

func device(t testing.TB, name string) hostid.HostID {
	t.Helper()
	id, err := hostid.New(name, hostid.String)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func rights(count int64) *core.LoadRights {
	return &core.LoadRights{Source: "test", Sequence: 1, Lines: []core.FeatureLine{
		{Name: "cad", Version: version.MustParse("1.0"), Count: count},
		{Name: "viewer", Version: version.MustParse("2.0"), Count: count, Overdraft: 5},
	}}
}

func hello(id hostid.HostID) *core.Hello {
	return &core.Hello{Device: core.DeviceInfo{ID: id, Type: core.DevicePhysical, Alias: "alias " + id.Value}}
}

func checkout(id hostid.HostID, feature string, count int64) *core.Checkout {
	v := "1.0"
	if feature == "viewer" {
		v = "2.0"
	}
	return &core.Checkout{Device: id, Feature: feature, Version: version.MustParse(v), Count: count}
}

// view is what the administrator sees of a state; two states that agree on
// it hold the same leases, devices and settings.
type view struct {
	Features   []core.FeatureSummary
	Details    []core.FeatureDetail
	Devices    []core.DeviceDetail
	Properties []core.Property
}

func viewOf(s *core.State) (view, error) {
	v := view{Features: s.Features(), Properties: s.Properties()}
	for _, f := range v.Features {
		d, err := s.FeatureDetails(f.Name, f.Version)
		if err != nil {
			return v, err
		}
		v.Details = append(v.Details, d)
	}
	for _, d := range s.Devices() {
		dd, err := s.Device(d.ID)
		if err != nil {
			return v, err
		}
		v.Devices = append(v.Devices, dd)
	}
	return v, nil
}

func readView(t testing.TB, n *Node) string {
	t.Helper()
	var out []byte
	err := n.Read(context.Background(), func(s *core.State) error {
		v, err := viewOf(s)
		if err != nil {
			return err
		}
		out, err = json.MarshalIndent(v, "", " ")
		return err
	})
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	return string(out)
}

// metric returns a value from WriteMetrics.
func metric(t testing.TB, n *Node, name string) float64 {
	t.Helper()
	var buf bytes.Buffer
	n.WriteMetrics(&buf)
	sc := bufio.NewScanner(&buf)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 2 && f[0] == name {
			v, err := strconv.ParseFloat(f[1], 64)
			if err != nil {
				t.Fatalf("metric %s: %v", name, err)
			}
			return v
		}
	}
	t.Fatalf("no metric %s in\n%s", name, buf.String())
	return 0
}

// observer records the requests Observe sees.
type observer struct {
	mu   sync.Mutex
	seen []core.RequestID
}

func (o *observer) observe(r core.Request, _ core.Result) {
	o.mu.Lock()
	o.seen = append(o.seen, r.ID)
	o.mu.Unlock()
}

func (o *observer) of(session core.SessionID) []uint64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	var seqs []uint64
	for _, id := range o.seen {
		if id.Session == session {
			seqs = append(seqs, id.Seq)
		}
	}
	return seqs
}

func devName(i int) string { return fmt.Sprintf("device-%04d", i) }
