package core

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/tallyhq/tally/core/hostid"
	"github.com/tallyhq/tally/core/version"
)

// row is a usage row for comparisons.
func row(name, ver string, checkouts, peak int64) UsageRow {
	return UsageRow{Name: name, Version: version.MustParse(ver), Checkouts: checkouts, PeakUsed: peak}
}

// current returns the open usage window's rows.
func (h *harness) current() []UsageRow { return h.s.SyncStatus().Current.Features }

func (h *harness) wantCurrent(want ...UsageRow) {
	h.t.Helper()
	if got := h.current(); !reflect.DeepEqual(got, append([]UsageRow{}, want...)) {
		h.t.Fatalf("open window %+v, want %+v", got, want)
	}
	if err := h.s.sync.check(h.s.now); err != nil {
		h.t.Fatal(err)
	}
}

// pending returns the pending request, failing without one.
func (h *harness) pending() SyncRequest {
	h.t.Helper()
	p, ok := h.s.PendingSync()
	if !ok {
		h.t.Fatal("no pending request")
	}
	return p
}

func windowIDs(ws []UsageWindow) []uint64 {
	ids := []uint64{}
	for _, w := range ws {
		ids = append(ids, w.ID)
	}
	return ids
}

func TestUsageCountedOnGrants(t *testing.T) {
	h := newHarness(t)
	h.rights("r", 1, fline("c1", "cad", "1.0", 3), fline("c2", "cad", "2.0", 5), fline("v", "viewer", "1.0", 1),
		FeatureLine{ID: "u", Name: "reader", Version: version.MustParse("1.0"), Uncounted: true})
	a, b := h.hello(1), h.hello(2)
	h.wantCurrent()

	h.advance(time.Minute)
	first := h.now
	h.granted(a, "cad", "1.0", 2)
	h.wantCurrent(row("cad", "1.0", 1, 2))

	// A renewal at the same count, a partial return and a denial count
	// nothing.
	h.advance(time.Minute)
	h.granted(a, "cad", "1.0", 2)
	h.granted(a, "cad", "1.0", 1)
	h.denied(b, "cad", "1.0", 8, DenyInsufficient)
	h.denied(b, "nothing", "1.0", 1, DenyNoSuchFeature)
	h.denied(b, "cad", "3.0", 1, DenyNoSuchVersion)
	h.wantCurrent(row("cad", "1.0", 1, 2))

	// Raising a count is a grant; the peak is what the row holds after it.
	h.granted(b, "cad", "1.0", 2)
	h.wantCurrent(row("cad", "1.0", 2, 3))
	h.granted(a, "cad", "1.0", 0)
	h.granted(a, "cad", "1.0", 1)
	h.wantCurrent(row("cad", "1.0", 3, 3))

	// Counts are charged to the row of the lines drawn on: a grant drawing
	// on cad 1.0 and 2.0 counts on both, a 1.0 request served by a 2.0 line
	// on cad 2.0.
	h.granted(a, "cad", "1.0", 0)
	h.granted(b, "cad", "1.0", 0)
	h.granted(a, "cad", "1.0", 5)
	h.wantCurrent(row("cad", "1.0", 4, 3), row("cad", "2.0", 1, 2))
	h.granted(b, "cad", "1.0", 1)
	h.wantCurrent(row("cad", "1.0", 4, 3), row("cad", "2.0", 2, 3))

	// Uncounted lines count too.
	h.granted(b, "reader", "1.0", 7)
	h.granted(a, "viewer", "1.0", 1)
	h.wantCurrent(row("cad", "1.0", 4, 3), row("cad", "2.0", 2, 3), row("reader", "1.0", 1, 7), row("viewer", "1.0", 1, 1))
	if from := h.s.SyncStatus().Current.From; !from.Equal(first) {
		t.Fatalf("the open window starts at %s, want the first grant's %s", from, first)
	}

	// The row survives a reload of the rights that rebuilds the groups; the
	// leases placed again are no grants.
	h.rights("r", 2, fline("c1", "cad", "1.0", 10), fline("c2", "cad", "2.0", 5), fline("v", "viewer", "1.0", 1),
		FeatureLine{ID: "u", Name: "reader", Version: version.MustParse("1.0"), Uncounted: true})
	h.wantCurrent(row("cad", "1.0", 4, 3), row("cad", "2.0", 2, 3), row("reader", "1.0", 1, 7), row("viewer", "1.0", 1, 1))
	h.granted(b, "cad", "1.0", 3)
	h.wantCurrent(row("cad", "1.0", 5, 8), row("cad", "2.0", 2, 3), row("reader", "1.0", 1, 7), row("viewer", "1.0", 1, 1))
}

func TestBeginSync(t *testing.T) {
	h := newHarness(t)
	h.rights("r", 1, fline("c", "cad", "1.0", 10))
	a := h.hello(1)
	if _, ok := h.s.PendingSync(); ok {
		t.Fatal("a new state has a pending request")
	}
	if st := h.s.SyncStatus(); st.NextRequest != 1 || st.PendingRequest != 0 {
		t.Fatalf("status of a new state %+v", st)
	}

	// Without usage, a request carries no window.
	h.apply(&BeginSync{})
	if p := h.pending(); p.Sequence != 1 || len(p.Windows) != 0 || !p.Issued.Equal(h.now) {
		t.Fatalf("first request %+v", p)
	}

	h.advance(time.Minute)
	from := h.now
	h.granted(a, "cad", "1.0", 2)
	h.advance(time.Hour)
	acts := []Activation{{ActivationID: "ACT-1", Count: 5}, {ActivationID: "ACT 2", Count: 0}}
	h.apply(&BeginSync{Activations: acts})
	want := SyncRequest{Sequence: 2, Issued: h.now, Activations: acts,
		Windows: []UsageWindow{{ID: 1, From: from, To: h.now, Features: []UsageRow{row("cad", "1.0", 1, 2)}}}}
	if p := h.pending(); !reflect.DeepEqual(p, want) {
		t.Fatalf("second request\n%+v\nwant\n%+v", p, want)
	}
	h.wantCurrent()

	// A request with nothing new carries the same window again under a new
	// sequence; the one before is superseded.
	h.advance(time.Minute)
	h.apply(&BeginSync{})
	p := h.pending()
	if p.Sequence != 3 || !reflect.DeepEqual(p.Windows, want.Windows) || p.Activations != nil {
		t.Fatalf("third request %+v", p)
	}
	h.granted(a, "cad", "1.0", 3)
	h.apply(&BeginSync{})
	if p := h.pending(); p.Sequence != 4 || !reflect.DeepEqual(windowIDs(p.Windows), []uint64{1, 2}) {
		t.Fatalf("fourth request %+v", p)
	}
	if st := h.s.SyncStatus(); st.NextRequest != 5 || st.PendingRequest != 4 || st.UnacknowledgedWindows != 2 {
		t.Fatalf("status %+v", st)
	}
	h.refuse(&CompleteSync{RequestSequence: 3, Sequence: 1}, ErrSyncOutOfOrder)

	// PendingSync hands out copies.
	p = h.pending()
	p.Windows[0].Features[0].Checkouts = 99
	p.Activations = append(p.Activations, Activation{ActivationID: "x"})
	if again := h.pending(); again.Windows[0].Features[0].Checkouts != 1 {
		t.Fatal("PendingSync shares the state's windows")
	}
}

func TestBeginSyncValidatesActivations(t *testing.T) {
	many := func(n int) []Activation {
		list := make([]Activation, n)
		for i := range list {
			list[i] = Activation{ActivationID: fmt.Sprintf("A%d", i), Count: 1}
		}
		return list
	}
	for _, c := range []struct {
		name string
		acts []Activation
		ok   bool
	}{
		{"return", []Activation{{ActivationID: "A", Count: 0}}, true},
		{"largest count", []Activation{{ActivationID: "A", Count: MaxCount}}, true},
		{"longest ID", []Activation{{ActivationID: strings.Repeat("x", MaxActivationIDLen), Count: 1}}, true},
		{"most activations", many(MaxActivations), true},
		{"empty ID", []Activation{{ActivationID: "", Count: 1}}, false},
		{"blank ID", []Activation{{ActivationID: "   ", Count: 1}}, false},
		{"long ID", []Activation{{ActivationID: strings.Repeat("x", MaxActivationIDLen+1), Count: 1}}, false},
		{"control character", []Activation{{ActivationID: "A\n", Count: 1}}, false},
		{"negative count", []Activation{{ActivationID: "A", Count: -1}}, false},
		{"count too large", []Activation{{ActivationID: "A", Count: MaxCount + 1}}, false},
		{"twice", []Activation{{ActivationID: "A", Count: 1}, {ActivationID: "A", Count: 2}}, false},
		{"too many", many(MaxActivations + 1), false},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t)
			if c.ok {
				h.apply(&BeginSync{Activations: c.acts})
				return
			}
			h.refuse(&BeginSync{Activations: c.acts}, ErrInvalidActivation)
		})
	}
}

// response answers the pending request with lines of cad.
func (h *harness) response(seq uint64, count int64, ack uint64) *CompleteSync {
	h.t.Helper()
	return &CompleteSync{RequestSequence: h.pending().Sequence, Sequence: seq, UsageAck: ack,
		Lines: []FeatureLine{{ID: "bo-cad", Name: "cad", Version: version.MustParse("1.0"), Count: count}}}
}

func TestCompleteSync(t *testing.T) {
	h := withAdmin(t)
	h.rights("r", 1, fline("c", "other", "1.0", 10))
	a := h.hello(1)
	h.granted(a, "other", "1.0", 1)
	h.apply(&BeginSync{Activations: []Activation{{ActivationID: "ACT-1", Count: 5}}})
	h.advance(time.Minute)
	h.granted(a, "other", "1.0", 2)
	h.apply(&BeginSync{Activations: []Activation{{ActivationID: "ACT-1", Count: 5}}})
	if p := h.pending(); !reflect.DeepEqual(windowIDs(p.Windows), []uint64{1, 2}) {
		t.Fatalf("request carries windows %v", windowIDs(p.Windows))
	}
	h.granted(a, "other", "1.0", 3)

	// The back office recorded window 1 only: window 2 and the open window
	// stay.
	h.advance(time.Minute)
	resp := h.response(4, 5, 1)
	resp.Locks = map[string]string{"server.allowDeviceDrop": "false"}
	resp.Activations = []ActivationResult{{ActivationID: "ACT-1", Count: 5, Result: ActivationOK}}
	before := h.s.AuditCount()
	h.apply(audited(resp))
	if f := h.feature("cad", "1.0"); f.Total != 5 {
		t.Fatalf("cad after the response: %+v", f)
	}
	if d, _ := h.s.FeatureDetails("cad", version.MustParse("1.0")); d.Lines[0].Source != DefaultSyncSource {
		t.Fatalf("line source %q", d.Lines[0].Source)
	}
	if p, _ := h.s.Property("server.allowDeviceDrop"); p.Value != "false" || !p.Locked {
		t.Fatalf("lock not applied: %+v", p)
	}
	st := h.s.SyncStatus()
	want := SyncStatus{NextRequest: 3, LastResponse: 4, LastResponseAt: h.now, UsageAck: 1, UnacknowledgedWindows: 1,
		Current:         UsageWindow{From: st.Current.From, To: h.now, Features: []UsageRow{row("other", "1.0", 1, 3)}},
		LastActivations: []ActivationResult{{ActivationID: "ACT-1", Count: 5, Result: ActivationOK}}}
	if !reflect.DeepEqual(st, want) {
		t.Fatalf("status\n%+v\nwant\n%+v", st, want)
	}
	if _, ok := h.s.PendingSync(); ok {
		t.Fatal("the request is still pending")
	}
	recs := h.s.Audit(0, 0)
	if len(recs) != before+1 || recs[len(recs)-1].Action != "completeSync" || !strings.Contains(recs[len(recs)-1].Detail, "response 4 to request 2") {
		t.Fatalf("audit %+v", recs[before:])
	}

	// The next request carries window 2 and the closed open window; its
	// response replaces the lines and acknowledges both.
	h.apply(&BeginSync{})
	if p := h.pending(); !reflect.DeepEqual(windowIDs(p.Windows), []uint64{2, 3}) {
		t.Fatalf("request carries windows %v", windowIDs(p.Windows))
	}
	h.apply(h.response(5, 8, 3))
	if f := h.feature("cad", "1.0"); f.Total != 8 {
		t.Fatalf("cad after the second response: %+v", f)
	}
	if st := h.s.SyncStatus(); st.UnacknowledgedWindows != 0 || st.UsageAck != 3 || st.LastActivations != nil {
		t.Fatalf("status %+v", st)
	}

	// A response into a source of its own.
	h.apply(&BeginSync{})
	named := h.response(6, 2, 3)
	named.Source, named.Lines[0].ID = "bo-2", "bo-2-cad"
	h.apply(named)
	if f := h.feature("cad", "1.0"); f.Total != 10 {
		t.Fatalf("cad from two sources: %+v", f)
	}
}

func TestCompleteSyncRefusals(t *testing.T) {
	h := withAdmin(t)
	h.rights("r", 1, fline("c", "cad", "1.0", 10))
	a := h.hello(1)
	h.granted(a, "cad", "1.0", 2)

	noPending := &CompleteSync{RequestSequence: 1, Sequence: 1}
	h.refuse(audited(noPending), ErrSyncOutOfOrder)
	h.apply(&BeginSync{Activations: []Activation{{ActivationID: "ACT-1", Count: 1}}})
	h.apply(&BeginSync{Activations: []Activation{{ActivationID: "ACT-1", Count: 1}}})
	h.apply(audited(h.response(3, 5, 0)))
	h.apply(&BeginSync{})
	h.apply(&BeginSync{})
	// Pending is request 4; the last response applied is 3.
	withLines := func(c *CompleteSync, lines ...FeatureLine) *CompleteSync {
		c.Lines = lines
		return c
	}
	h.rights(DefaultSyncSource+"-x", 1, fline("taken", "cad", "1.0", 1))
	h.apply(&SetProperty{Name: "server.pageSize", Value: "50"})
	h.rights("locker", 1)
	h.apply(&LoadRights{Source: "locker", Sequence: 2, Locks: map[string]string{"server.pageSize": "60"}})

	cases := []struct {
		name string
		c    *CompleteSync
		want error
	}{
		{"answers a superseded request", &CompleteSync{RequestSequence: 3, Sequence: 9}, ErrSyncOutOfOrder},
		{"answers the request applied", &CompleteSync{RequestSequence: 2, Sequence: 9}, ErrSyncOutOfOrder},
		{"answers a request not made", &CompleteSync{RequestSequence: 5, Sequence: 9}, ErrSyncOutOfOrder},
		{"replays the response applied", &CompleteSync{RequestSequence: 2, Sequence: 3}, ErrSyncReplay},
		{"replayed against the pending request", &CompleteSync{RequestSequence: 4, Sequence: 3}, ErrSyncReplay},
		{"stale response sequence", &CompleteSync{RequestSequence: 4, Sequence: 2}, ErrSyncReplay},
		{"sequence 0", &CompleteSync{RequestSequence: 4}, ErrInvalidCommand},
		{"line without count", withLines(&CompleteSync{RequestSequence: 4, Sequence: 9}, fline("x", "cad", "1.0", 0)), ErrInvalidCount},
		{"line without version", withLines(&CompleteSync{RequestSequence: 4, Sequence: 9}, FeatureLine{Name: "cad", Count: 1}), ErrInvalidFeature},
		{"line of another source", withLines(&CompleteSync{RequestSequence: 4, Sequence: 9}, FeatureLine{Name: "cad", Version: version.MustParse("1"), Count: 1, Source: "r"}), ErrInvalidFeature},
		{"line ID held by another source", withLines(&CompleteSync{RequestSequence: 4, Sequence: 9}, fline("taken", "cad", "1.0", 1)), ErrInvalidFeature},
		{"conflicting lock", &CompleteSync{RequestSequence: 4, Sequence: 9, Locks: map[string]string{"server.pageSize": "70"}}, ErrConflictingLock},
		{"unknown lock", &CompleteSync{RequestSequence: 4, Sequence: 9, Locks: map[string]string{"no.such": "1"}}, ErrUnknownProperty},
		{"result of an activation not asked for", &CompleteSync{RequestSequence: 4, Sequence: 9,
			Activations: []ActivationResult{{ActivationID: "ACT-1", Count: 1, Result: ActivationOK}}}, ErrInvalidActivation},
		{"bad activation result", &CompleteSync{RequestSequence: 4, Sequence: 9,
			Activations: []ActivationResult{{ActivationID: "ACT-1", Count: 1, Result: "maybe"}}}, ErrInvalidActivation},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			// refuse checks that the snapshot, audit log included, is
			// unchanged.
			h.t = t
			h.refuse(audited(c.c), c.want)
		})
	}
	h.t = t

	// Rights of the source loaded otherwise at a higher sequence make the
	// response stale as rights, and it changes nothing either.
	h.rights(DefaultSyncSource, 20)
	h.refuse(audited(&CompleteSync{RequestSequence: 4, Sequence: 9}), ErrStaleRights)
	h.apply(audited(&CompleteSync{RequestSequence: 4, Sequence: 21}))
}

func TestSyncSnapshotRoundTrip(t *testing.T) {
	h := newHarness(t)
	if bytes.Contains(h.snapshot(), []byte(`"sync"`)) {
		t.Fatal("a state without an exchange snapshots one")
	}
	h.rights("r", 1, fline("c", "cad", "1.0", 10), fline("v", "viewer", "2.0", 10))
	a := h.hello(1)
	h.granted(a, "cad", "1.0", 2)
	h.apply(&BeginSync{})
	h.apply(h.response(1, 3, 0))
	h.granted(a, "viewer", "2.0", 1)
	h.apply(&BeginSync{Activations: []Activation{{ActivationID: "A", Count: 2}}})
	h.advance(time.Minute)
	h.granted(a, "cad", "1.0", 3)

	snap := h.snapshot()
	back, err := Restore(Config{}, snap)
	if err != nil {
		t.Fatal(err)
	}
	if again, _ := back.Snapshot(); !bytes.Equal(again, snap) {
		t.Fatalf("snapshot round trip differs:\n%s\n%s", snap, again)
	}
	if !reflect.DeepEqual(back.SyncStatus(), h.s.SyncStatus()) {
		t.Fatalf("status after restore\n%+v\nwant\n%+v", back.SyncStatus(), h.s.SyncStatus())
	}
	p, _ := back.PendingSync()
	if !reflect.DeepEqual(p, h.pending()) {
		t.Fatalf("pending after restore\n%+v\nwant\n%+v", p, h.pending())
	}
	// The restored state goes on counting into the same open window.
	h.s = back
	h.granted(a, "viewer", "2.0", 2)
	h.wantCurrent(row("cad", "1.0", 1, 3), row("viewer", "2.0", 1, 2))
}

func TestSyncRestoreRefusesDamage(t *testing.T) {
	h := newHarness(t)
	h.rights("r", 1, fline("c", "cad", "1.0", 10), fline("v", "viewer", "2.0", 10))
	a := h.hello(1)
	h.granted(a, "cad", "1.0", 2)
	h.apply(&BeginSync{})
	h.granted(a, "viewer", "2.0", 1)
	h.apply(&BeginSync{})
	h.granted(a, "cad", "1.0", 3)
	snap := h.snapshot()
	if _, err := Restore(Config{}, snap); err != nil {
		t.Fatal(err)
	}
	type syncMap = map[string]any
	damage := func(edit func(s syncMap)) []byte {
		var m map[string]any
		if err := json.Unmarshal(snap, &m); err != nil {
			t.Fatal(err)
		}
		edit(m["sync"].(syncMap))
		b, _ := json.Marshal(m)
		return b
	}
	windows := func(s syncMap) []any { return s["windows"].([]any) }
	for name, edit := range map[string]func(syncMap){
		"windows out of order":        func(s syncMap) { w := windows(s); w[0], w[1] = w[1], w[0] },
		"a window twice":              func(s syncMap) { s["windows"] = append(windows(s), windows(s)[1]) },
		"a window not given":          func(s syncMap) { s["windowSeq"] = 1 },
		"an acknowledged window kept": func(s syncMap) { s["usageAck"] = 1 },
		"window 0":                    func(s syncMap) { windows(s)[0].(syncMap)["id"] = 0 },
		"a window without rows":       func(s syncMap) { windows(s)[0].(syncMap)["features"] = []any{} },
		"a window ending before it starts": func(s syncMap) {
			windows(s)[0].(syncMap)["to"] = "2000-01-01T00:00:00Z"
		},
		"a window ending after the clock": func(s syncMap) { windows(s)[1].(syncMap)["to"] = "2100-01-01T00:00:00Z" },
		"a row without checkouts": func(s syncMap) {
			windows(s)[0].(syncMap)["features"].([]any)[0].(syncMap)["checkouts"] = 0
		},
		"pending a superseded request": func(s syncMap) { s["pending"].(syncMap)["sequence"] = 1 },
		"pending beyond the windows":   func(s syncMap) { s["pending"].(syncMap)["upTo"] = 9 },
		"pending bad activation": func(s syncMap) {
			s["pending"].(syncMap)["activations"] = []any{syncMap{"activationId": "", "count": 1}}
		},
		"response time without a response": func(s syncMap) { s["responseAt"] = "2026-01-05T09:00:00Z" },
		"open window rows twice": func(s syncMap) {
			c := s["current"].([]any)
			s["current"] = append(c, c[0])
		},
		"open window without a start": func(s syncMap) { delete(s, "currentFrom") },
		"open window start without rows": func(s syncMap) {
			delete(s, "current")
		},
		"unknown field": func(s syncMap) { s["extra"] = 1 },
	} {
		if _, err := Restore(Config{}, damage(edit)); !errors.Is(err, ErrInvalidSnapshot) {
			t.Errorf("%s: %v, want ErrInvalidSnapshot", name, err)
		}
	}
}

// TestRestoreBackupSync checks what a database restore does with the
// exchange: it keeps the running cluster's sequences and usage, so that no
// old response is accepted again and no usage is lost or counted twice,
// and adds the usage of a backup from another history.
func TestRestoreBackupSync(t *testing.T) {
	h := newHarness(t)
	h.rights("r", 1, fline("c", "cad", "1.0", 10))
	a := h.hello(1)
	h.granted(a, "cad", "1.0", 1)
	h.apply(&BeginSync{})
	old := h.response(1, 3, 1)
	h.granted(a, "cad", "1.0", 2) // open usage in the backup
	backup := h.snapshot()

	h.apply(old)
	h.granted(a, "cad", "1.0", 3)
	h.apply(&BeginSync{})
	h.granted(a, "cad", "1.0", 4)
	before := h.s.SyncStatus()
	pendingBefore := h.pending()

	h.apply(&RestoreBackup{Snapshot: backup})
	after := h.s.SyncStatus()
	after.Current.To = before.Current.To
	if !reflect.DeepEqual(after, before) {
		t.Fatalf("a backup of the cluster's own past changed the exchange:\n%+v\nwant\n%+v", after, before)
	}
	if p := h.pending(); !reflect.DeepEqual(p, pendingBefore) {
		t.Fatalf("pending request after restore %+v, want %+v", p, pendingBefore)
	}
	// The response the backup was waiting for is refused: it was applied.
	h.refuse(old, ErrSyncReplay)
	// The backup's rights are back, and the next response replaces them.
	if f := h.feature("cad", "1.0"); f.Total != 10 {
		t.Fatalf("rights after restore %+v", f)
	}
	h.apply(h.response(2, 4, 2))

	// A backup from another history (a dead server, restored onto a new
	// one): its higher sequences are taken, its unreported usage is added,
	// open window included, and none of its responses is accepted again.
	fresh := newHarness(t)
	fresh.now = h.now.Add(time.Hour)
	fresh.rights("r", 1, fline("c", "cad", "1.0", 10))
	b := fresh.hello(2)
	fresh.granted(b, "cad", "1.0", 5)
	fresh.apply(&RestoreBackup{Snapshot: h.snapshot()})
	st := fresh.s.SyncStatus()
	if st.NextRequest != 3 || st.PendingRequest != 0 || st.LastResponse != 2 || st.UsageAck != 0 || st.UnacknowledgedWindows != 1 {
		t.Fatalf("sequences after restoring another history's backup %+v", st)
	}
	fresh.apply(&BeginSync{})
	p := fresh.pending()
	if p.Sequence != 3 || !reflect.DeepEqual(windowIDs(p.Windows), []uint64{3, 4}) {
		t.Fatalf("request after the restore %+v", p)
	}
	if got := p.Windows[0].Features[0]; got != row("cad", "1.0", 1, 4) {
		t.Fatalf("the backup's open window became %+v", got)
	}
	if got := p.Windows[1].Features[0]; got != row("cad", "1.0", 1, 5) {
		t.Fatalf("the new server's own usage became %+v", got)
	}
	fresh.refuse(&CompleteSync{RequestSequence: 3, Sequence: 2}, ErrSyncReplay)
}

func TestUsageWindowLimit(t *testing.T) {
	h := newHarness(t)
	h.unchecked = true
	h.rights("r", 1, fline("c", "cad", "1.0", 10))
	a := h.hello(1)
	for i := range MaxUsageWindows {
		h.granted(a, "cad", "1.0", int64(i%2+1))
		h.apply(&BeginSync{})
		h.granted(a, "cad", "1.0", 0)
	}
	if st := h.s.SyncStatus(); st.UnacknowledgedWindows != MaxUsageWindows {
		t.Fatalf("%d windows", st.UnacknowledgedWindows)
	}
	// With every window taken, the open window stays open and counts on.
	h.granted(a, "cad", "1.0", 1)
	h.apply(&BeginSync{})
	h.granted(a, "cad", "1.0", 0)
	h.granted(a, "cad", "1.0", 1)
	h.wantCurrent(row("cad", "1.0", 2, 1))
	p := h.pending()
	if rows := len(p.Windows); rows != MaxUsageWindows || p.Windows[rows-1].ID != MaxUsageWindows {
		t.Fatalf("request carries %d windows", rows)
	}
	// Once the back office records them, it closes.
	h.apply(h.response(1, 10, MaxUsageWindows))
	h.apply(&BeginSync{})
	if p := h.pending(); len(p.Windows) != 1 || p.Windows[0].ID != MaxUsageWindows+1 || p.Windows[0].Features[0].Checkouts != 2 {
		t.Fatalf("request after the acknowledgement %+v", p)
	}
}

func TestUsageWindowSplitsAndRequestRows(t *testing.T) {
	h := newHarness(t)
	h.unchecked = true
	n := MaxWindowRows + 10
	lines := make([]FeatureLine, n)
	for i := range lines {
		lines[i] = fline(fmt.Sprint("l", i), fmt.Sprintf("f%05d", i), "1.0", 1)
	}
	h.rights("r", 1, lines...)
	devs := []hostid.HostID{h.hello(1), h.hello(2), h.hello(3)} // a device holds at most 1,024 leases
	// useAll grants every feature once and returns it after a request.
	useAll := func() {
		for i := range n {
			h.granted(devs[i%3], fmt.Sprintf("f%05d", i), "1.0", 1)
		}
		h.apply(&BeginSync{})
		for i := range n {
			h.granted(devs[i%3], fmt.Sprintf("f%05d", i), "1.0", 0)
		}
	}
	useAll()
	useAll()
	// Two closed windows of n rows, each split in two.
	p := h.pending()
	if !reflect.DeepEqual(windowIDs(p.Windows), []uint64{1, 2, 3, 4}) || len(p.Windows[0].Features) != MaxWindowRows || len(p.Windows[1].Features) != 10 {
		t.Fatalf("windows %v", windowIDs(p.Windows))
	}
	useAll()
	useAll()
	useAll()
	rows := 0
	for _, w := range h.pending().Windows {
		rows += len(w.Features)
	}
	if rows > MaxRequestRows || h.s.SyncStatus().UnacknowledgedWindows <= len(h.pending().Windows) {
		t.Fatalf("a request carries %d rows of %d windows", rows, h.s.SyncStatus().UnacknowledgedWindows)
	}
	if err := h.s.sync.check(h.s.now); err != nil {
		t.Fatal(err)
	}
}

// backOffice records usage windows by ID, as tally-backoffice does: a
// window it has seen is not recorded again.
type backOffice struct {
	t        *testing.T
	recorded map[uint64]UsageWindow
	ack      uint64
	sequence uint64
}

// answer records a request's windows and returns the response.
func (b *backOffice) answer(req SyncRequest) *CompleteSync {
	for _, w := range req.Windows {
		if seen, ok := b.recorded[w.ID]; ok {
			if !reflect.DeepEqual(seen, w) {
				b.t.Fatalf("window %d sent again with other content:\n%+v\n%+v", w.ID, seen, w)
			}
			continue
		}
		b.recorded[w.ID] = w
		b.ack = max(b.ack, w.ID)
	}
	b.sequence++
	return &CompleteSync{RequestSequence: req.Sequence, Sequence: b.sequence, UsageAck: b.ack,
		Lines: []FeatureLine{fline("bo", "bo", "1.0", 1)}}
}

// TestUsageReachesTheBackOfficeOnce runs random grants, requests, lost
// requests and responses, late and repeated responses, restarts (another
// node taking over from a snapshot) and restores of older backups, then
// syncs until nothing is left: every window is recorded once and the
// checkouts recorded add up to the grants made.
func TestUsageReachesTheBackOfficeOnce(t *testing.T) {
	for seed := range uint64(20) {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 7))
			h := newHarness(t)
			h.rights("r", 1, fline("c", "cad", "1.0", 6), fline("v", "viewer", "1.0", 4))
			devs := []hostid.HostID{h.hello(1), h.hello(2), h.hello(3)}
			bo := &backOffice{t: t, recorded: map[uint64]UsageWindow{}}
			var grants int64
			var inFlight []*CompleteSync // responses not yet delivered
			var backups [][]byte
			for range 400 {
				h.advance(time.Duration(rng.IntN(120)) * time.Second)
				switch k := rng.IntN(20); {
				case k < 10:
					feature := []string{"cad", "viewer"}[rng.IntN(2)]
					dev := devs[rng.IntN(len(devs))]
					held := int64(0)
					if d, err := h.s.Device(dev); err == nil {
						for _, l := range d.Leases {
							if l.Feature == feature {
								held = l.Count
							}
						}
					}
					res := h.checkout(dev, feature, "1.0", int64(rng.IntN(4)))
					if res.Denied == NotDenied && res.Grant.Count > held {
						grants++
					}
				case k < 13:
					h.apply(&BeginSync{})
					if rng.IntN(4) > 0 { // else the request is lost
						inFlight = append(inFlight, bo.answer(h.pending()))
					}
				case k < 16 && len(inFlight) > 0:
					// Deliver a response, maybe a late or repeated one, maybe
					// lose it.
					i := rng.IntN(len(inFlight))
					resp := inFlight[i]
					if rng.IntN(3) == 0 {
						inFlight = append(inFlight[:i], inFlight[i+1:]...)
					}
					if rng.IntN(4) == 0 {
						continue
					}
					if _, err := h.s.Apply(h.request(resp)); err != nil &&
						!errors.Is(err, ErrSyncOutOfOrder) && !errors.Is(err, ErrSyncReplay) {
						t.Fatalf("response refused: %v", err)
					}
				case k == 16:
					backups = append(backups, h.snapshot())
				case k == 17 && len(backups) > 0:
					h.apply(&RestoreBackup{Snapshot: backups[rng.IntN(len(backups))]})
				case k == 18:
					// Another node takes over with the replicated state.
					s, err := Restore(Config{}, h.snapshot())
					if err != nil {
						t.Fatal(err)
					}
					h.s = s
				}
				if err := h.s.sync.check(h.s.now); err != nil {
					t.Fatal(err)
				}
			}
			for range 10 {
				h.apply(&BeginSync{})
				h.apply(bo.answer(h.pending()))
			}
			if st := h.s.SyncStatus(); st.UnacknowledgedWindows != 0 || len(st.Current.Features) != 0 {
				t.Fatalf("usage left after syncing: %+v", st)
			}
			var recorded int64
			for _, w := range bo.recorded {
				for _, r := range w.Features {
					recorded += r.Checkouts
				}
			}
			if recorded != grants || grants == 0 {
				t.Fatalf("the back office recorded %d checkouts of %d grants", recorded, grants)
			}
		})
	}
}
