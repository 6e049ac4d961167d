package core

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tallyhq/tally/core/hostid"
	"github.com/tallyhq/tally/core/version"
)

func TestServedVersionRule(t *testing.T) {
	tests := []struct {
		lineVer, askVer string
		want            DenialReason
	}{
		{"2.0", "1.0", NotDenied},
		{"1.0", "1.0", NotDenied},
		{"1.10", "1.9", NotDenied},
		{"1.0", "2.0", DenyNoSuchVersion},
		{"2022.01", "2022.1", NotDenied},
		{"6.1.3", "6.1.4", DenyNoSuchVersion},
	}
	for _, tt := range tests {
		t.Run(tt.lineVer+">="+tt.askVer, func(t *testing.T) {
			h := newHarness(t)
			h.rights("r", 1, fline("l", "cad", tt.lineVer, 5))
			dev := h.hello(1)
			if tt.want == NotDenied {
				h.granted(dev, "cad", tt.askVer, 1)
			} else {
				h.denied(dev, "cad", tt.askVer, 1, tt.want)
			}
		})
	}
}

func TestLowestServingVersionFirst(t *testing.T) {
	h := newHarness(t)
	h.rights("r", 1, fline("a", "cad", "1.0", 1), fline("b", "cad", "2.0", 1))
	old, fresh := h.hello(1), h.hello(2)
	h.granted(old, "cad", "1.0", 1) // takes the 1.0 line, keeping 2.0 free
	h.granted(fresh, "cad", "2.0", 1)
	h.denied(h.hello(3), "cad", "1.0", 1, DenyInsufficient)
}

func TestCountsExhaustAndReturn(t *testing.T) {
	h := newHarness(t)
	h.rights("r", 1, fline("l", "cad", "1.0", 3))
	devs := []hostid.HostID{h.hello(1), h.hello(2), h.hello(3), h.hello(4)}
	for _, d := range devs[:3] {
		h.granted(d, "cad", "1.0", 1)
	}
	h.denied(devs[3], "cad", "1.0", 1, DenyInsufficient)
	if f := h.feature("cad", "1.0"); f.Used != 3 || f.Available != 0 {
		t.Fatalf("used %d available %d, want 3 and 0", f.Used, f.Available)
	}
	if res := h.checkout(devs[0], "cad", "1.0", 0); res.Grant.Count != 0 {
		t.Fatalf("return left %d", res.Grant.Count)
	}
	h.granted(devs[3], "cad", "1.0", 1)
}

func TestDesiredCountSemantics(t *testing.T) {
	h := newHarness(t)
	h.rights("r", 1, fline("l", "cad", "1.0", 4))
	d := h.hello(1)
	h.granted(d, "cad", "1.0", 2)
	// Asking for more than exists is all or nothing: the two stay.
	res := h.checkout(d, "cad", "1.0", 5)
	if res.Denied != DenyInsufficient || res.Grant.Count != 2 {
		t.Fatalf("got %d denied %q, want to keep 2 and be denied", res.Grant.Count, res.Denied)
	}
	h.granted(d, "cad", "1.0", 4)
	h.granted(d, "cad", "1.0", 1) // partial return
	if f := h.feature("cad", "1.0"); f.Used != 1 {
		t.Fatalf("used %d after partial return, want 1", f.Used)
	}
}

func TestOverdraftIsGrantedAndMarked(t *testing.T) {
	h := newHarness(t)
	l := fline("l", "cad", "1.0", 2)
	l.Overdraft = 1
	h.rights("r", 1, l)
	a, b, c := h.hello(1), h.hello(2), h.hello(3)
	h.granted(a, "cad", "1.0", 2)
	if g := h.granted(b, "cad", "1.0", 1); g.Overdraft != 1 {
		t.Fatalf("third count not marked as overdraft: %+v", g)
	}
	h.denied(c, "cad", "1.0", 1, DenyInsufficient)
	f := h.feature("cad", "1.0")
	if f.Overdraft != 1 || f.OverdraftUsed != 1 || f.Used != 2 {
		t.Fatalf("features view %+v", f)
	}
	// Returning a regular count does not turn the overdraft into one.
	h.checkout(a, "cad", "1.0", 0)
	h.granted(c, "cad", "1.0", 1)
	dd, _ := h.s.Device(b)
	if dd.Leases[0].Overdraft != 1 {
		t.Fatalf("device b lease %+v, want overdraft 1", dd.Leases[0])
	}
}

func TestExpiryAndRenewal(t *testing.T) {
	h := newHarness(t)
	h.apply(&SetProperty{Name: "licensing.borrowInterval", Value: "1h"})
	h.rights("r", 1, fline("l", "cad", "1.0", 1))
	a, b := h.hello(1), h.hello(2)
	g := h.granted(a, "cad", "1.0", 1)
	if want := t0.Add(time.Hour); !g.Expiry.Equal(want) {
		t.Fatalf("expiry %s, want %s", g.Expiry, want)
	}
	if want := t0.Add(9 * time.Minute); !g.RenewAt.Equal(want) {
		t.Fatalf("renew at %s, want 15%% of an hour: %s", g.RenewAt, want)
	}
	h.advance(50 * time.Minute)
	g = h.granted(a, "cad", "1.0", 1) // renewal
	if want := h.now.Add(time.Hour); !g.Expiry.Equal(want) {
		t.Fatalf("renewed expiry %s, want %s", g.Expiry, want)
	}
	h.tick(59 * time.Minute)
	h.denied(b, "cad", "1.0", 1, DenyInsufficient)
	h.tick(time.Minute) // exactly at expiry
	if f := h.feature("cad", "1.0"); f.Used != 0 {
		t.Fatalf("expired lease still used: %+v", f)
	}
	h.granted(b, "cad", "1.0", 1)
}

func TestBorrowCappedByMaximumAndLineExpiry(t *testing.T) {
	h := newHarness(t)
	h.apply(&SetProperty{Name: "licensing.borrowIntervalMax", Value: "48h"})
	l := fline("l", "cad", "1.0", 1)
	l.Expiry = t0.Add(30 * time.Hour)
	h.rights("r", 1, l)
	d := h.hello(1)
	res := h.apply(&Checkout{Device: d, Feature: "cad", Version: version.MustParse("1.0"), Count: 1, Borrow: 24 * time.Hour})
	if want := t0.Add(24 * time.Hour); !res.Grant.Expiry.Equal(want) {
		t.Fatalf("expiry %s, want %s", res.Grant.Expiry, want)
	}
	res = h.apply(&Checkout{Device: d, Feature: "cad", Version: version.MustParse("1.0"), Count: 1, Borrow: 1000 * time.Hour})
	if want := l.Expiry; !res.Grant.Expiry.Equal(want) {
		t.Fatalf("expiry %s, want the line's %s", res.Grant.Expiry, want)
	}
	h.tick(30 * time.Hour)
	if fs := h.s.Features(); len(fs) != 1 || fs[0].Total != 0 {
		t.Fatalf("expired line still counted: %+v", fs)
	}
	h.denied(d, "cad", "1.0", 1, DenyNotActive)
}

func TestLineStartsLater(t *testing.T) {
	h := newHarness(t)
	l := fline("l", "cad", "1.0", 1)
	l.Start = t0.Add(time.Hour)
	h.rights("r", 1, l)
	d := h.hello(1)
	h.denied(d, "cad", "1.0", 1, DenyNotActive)
	h.advance(time.Hour)
	h.granted(d, "cad", "1.0", 1)
}

func TestUncountedGrantsAnything(t *testing.T) {
	h := newHarness(t)
	h.rights("r", 1, FeatureLine{Name: "viewer", Version: version.MustParse("1.0"), Uncounted: true})
	for i := range 5 {
		h.granted(h.hello(i), "viewer", "1.0", 1000)
	}
	f := h.feature("viewer", "1.0")
	if f.Counted || f.Used != 5000 {
		t.Fatalf("features view %+v", f)
	}
}

func TestMeteredConsumption(t *testing.T) {
	h := newHarness(t)
	h.rights("r", 1,
		FeatureLine{ID: "once", Name: "export", Version: version.MustParse("1.0"), Count: 3, Metered: true, UndoInterval: 10 * time.Minute},
		FeatureLine{ID: "again", Name: "render", Version: version.MustParse("1.0"), Count: 1, Metered: true, Reusable: true})
	d := h.hello(1)
	h.granted(d, "export", "1.0", 1)
	h.advance(5 * time.Minute)
	h.checkout(d, "export", "1.0", 0) // within the undo interval: given back
	if f := h.feature("export", "1.0"); f.Used != 0 || !f.Metered {
		t.Fatalf("undo within interval: %+v", f)
	}
	h.granted(d, "export", "1.0", 2)
	h.advance(11 * time.Minute)
	h.checkout(d, "export", "1.0", 0) // past it: consumed for good
	if f := h.feature("export", "1.0"); f.Used != 2 || f.Available != 1 {
		t.Fatalf("consumed counts: %+v", f)
	}
	h.denied(d, "export", "1.0", 2, DenyInsufficient)

	h.granted(d, "render", "1.0", 1)
	h.advance(time.Hour)
	h.checkout(d, "render", "1.0", 0) // reusable: always comes back
	if f := h.feature("render", "1.0"); f.Used != 0 {
		t.Fatalf("reusable metered: %+v", f)
	}
}

func TestReleaseOnDisconnect(t *testing.T) {
	h := newHarness(t)
	h.rights("r", 1, fline("l", "cad", "1.0", 2))
	d := h.hello(1)
	h.granted(d, "cad", "1.0", 2)
	h.apply(&Disconnect{Device: d})
	if f := h.feature("cad", "1.0"); f.Used != 2 {
		t.Fatalf("policy off: disconnect freed counts: %+v", f)
	}
	h.apply(&SetProperty{Name: "licensing.releaseOnDisconnect", Value: "true"})
	res := h.apply(&Disconnect{Device: d})
	if len(res.Changed) != 1 || res.Changed[0].Count != 0 {
		t.Fatalf("changed %+v, want the freed lease", res.Changed)
	}
	if f := h.feature("cad", "1.0"); f.Used != 0 {
		t.Fatalf("policy on: counts still used: %+v", f)
	}
}

func TestDropDevice(t *testing.T) {
	h := newHarness(t)
	h.rights("r", 1, fline("l", "cad", "1.0", 1))
	a, b := h.hello(1), h.hello(2)
	h.granted(a, "cad", "1.0", 1)
	h.apply(&SetProperty{Name: "server.allowDeviceDrop", Value: "false"})
	h.refuse(&DropDevice{Device: a}, ErrDropNotAllowed)
	h.apply(&SetProperty{Name: "server.allowDeviceDrop", Value: "true"})
	h.apply(&DropDevice{Device: a})
	if _, err := h.s.Device(a); !errors.Is(err, ErrUnknownDevice) {
		t.Fatalf("dropped device still there: %v", err)
	}
	h.granted(b, "cad", "1.0", 1)
	h.refuse(&DropDevice{Device: a}, ErrUnknownDevice)
}

func TestReservationBeforeShared(t *testing.T) {
	h := newHarness(t)
	h.rights("r", 1, fline("l", "cad", "1.0", 3))
	owner, other := h.hello(1), h.hello(2)
	h.apply(&SetReservations{Groups: []ReservationGroup{{Name: "lab", Reservations: []Reservation{
		{HostID: owner, Entries: []ReservationEntry{{Feature: "cad", Version: version.MustParse("1.0"), Count: 2}}},
	}}}})
	// The other device may only use the one shared count.
	h.granted(other, "cad", "1.0", 1)
	h.denied(other, "cad", "1.0", 2, DenyInsufficient)
	// The owner draws its reservation first and then shared counts: none left.
	h.granted(owner, "cad", "1.0", 2)
	h.denied(owner, "cad", "1.0", 3, DenyInsufficient)
	h.checkout(other, "cad", "1.0", 0)
	h.granted(owner, "cad", "1.0", 3) // the shared count, once free
	rows := h.s.ReservationRows()
	if len(rows) != 1 || !rows[0].Satisfiable {
		t.Fatalf("rows %+v", rows)
	}
	if d, _ := h.s.FeatureDetails("cad", version.MustParse("1.0")); d.Reserved != 2 {
		t.Fatalf("reserved %d, want 2", d.Reserved)
	}
}

func TestReservationVersionRule(t *testing.T) {
	h := newHarness(t)
	h.rights("r", 1, fline("l", "cad", "2.0", 2), fline("m", "sim", "1.0", 2))
	owner := h.hello(1)
	// A reservation for 1.0 is served by a 2.0 line...
	h.apply(&SetReservations{Groups: []ReservationGroup{{Name: "g", Reservations: []Reservation{
		{HostID: owner, Entries: []ReservationEntry{{Feature: "cad", Version: version.MustParse("1.0"), Count: 2}}},
	}}}})
	h.denied(h.hello(2), "cad", "2.0", 1, DenyInsufficient)
	h.granted(owner, "cad", "1.0", 2)
	// ...never the reverse.
	h.refuse(&SetReservations{Groups: []ReservationGroup{{Name: "g2", Reservations: []Reservation{
		{HostID: mac(3), Entries: []ReservationEntry{{Feature: "sim", Version: version.MustParse("2.0"), Count: 1}}},
	}}}}, ErrUnknownFeatureVer)
}

func TestUnsatisfiableReservation(t *testing.T) {
	h := newHarness(t)
	h.rights("r", 1, fline("l", "cad", "1.0", 3))
	h.apply(&SetReservations{Groups: []ReservationGroup{{Name: "big", Reservations: []Reservation{
		{HostID: mac(1), Entries: []ReservationEntry{{Feature: "cad", Version: version.MustParse("1.0"), Count: 2}}},
		{HostID: mac(2), Entries: []ReservationEntry{{Feature: "cad", Version: version.MustParse("1.0"), Count: 2}}},
	}}}})
	rows := h.s.ReservationRows()
	if !rows[0].Satisfiable || rows[1].Satisfiable {
		t.Fatalf("want the first satisfiable and the second not: %+v", rows)
	}
	// The unsatisfiable one holds nothing back: one count stays shared.
	h.granted(h.hello(9), "cad", "1.0", 1)
}

func TestReservationGroupsReplaceAndDelete(t *testing.T) {
	h := newHarness(t)
	h.rights("r", 1, fline("l", "cad", "1.0", 10))
	entry := func(n int64) []ReservationEntry {
		return []ReservationEntry{{Feature: "cad", Version: version.MustParse("1.0"), Count: n}}
	}
	h.apply(&SetReservations{Groups: []ReservationGroup{
		{Name: "a", Reservations: []Reservation{{HostID: mac(1), Entries: entry(1)}, {HostID: mac(2), Entries: entry(1)}}},
		{Name: "b", Reservations: []Reservation{{HostID: mac(3), Entries: entry(1)}}},
	}})
	h.apply(&SetReservations{Groups: []ReservationGroup{{Name: "a", Reservations: []Reservation{{HostID: mac(4), Entries: entry(5)}}}}})
	if rows := h.s.ReservationRows(); len(rows) != 2 || rows[0].HostID != mac(4) || rows[0].Count != 5 {
		t.Fatalf("group a not replaced whole: %+v", rows)
	}
	h.refuse(&SetReservations{Groups: []ReservationGroup{{Name: "c", Reservations: []Reservation{{HostID: mac(3), Entries: entry(1)}}}}}, ErrInvalidReserve)
	h.refuse(&DeleteReservations{Names: []string{"a", "nope"}}, ErrUnknownGroup)
	h.apply(&DeleteReservations{Names: []string{"a"}})
	if rows := h.s.ReservationRows(); len(rows) != 1 || rows[0].Group != "b" {
		t.Fatalf("after delete: %+v", rows)
	}
}

const sitesModel = `model "sites" {
  partitions {
    partition "pune" { "cad" 1.0 10  "viewer" 2.0 25% }
    partition "kassel" { "cad" 1.0 remainder }
  }
  on hostid("00:11:22:33:44:55", ETHERNET) or hostname("pune-*") { use "pune" }
  on dictionary("site", "kassel") and not hosttype(VIRTUAL) { use "kassel" }
  on hosttype(VIRTUAL) { deny }
  on any() { accept }        // default pool
}`

func TestPoolsVersusDefault(t *testing.T) {
	h := newHarness(t)
	h.rights("r", 1, fline("c", "cad", "1.0", 14), fline("v", "viewer", "2.0", 10))
	h.apply(&SetModel{Text: sitesModel})
	pune := h.hello(1, func(d *DeviceInfo) { d.Hostname = "PUNE-07" })
	pune2 := h.hello(2, func(d *DeviceInfo) { d.Hostname = "pune-08" })
	kassel := h.hello(3, func(d *DeviceInfo) { d.Attributes = map[string]string{"site": "kassel"} })
	elsewhere := h.hello(4)
	virtual := h.hello(5, func(d *DeviceInfo) { d.Type = DeviceVirtual })

	h.granted(pune, "cad", "1.0", 10)
	h.denied(pune2, "cad", "1.0", 1, DenyInsufficient) // pune's 10 are used; kassel's 4 are not pune's
	h.granted(kassel, "cad", "1.0", 4)
	h.denied(elsewhere, "cad", "1.0", 1, DenyInsufficient) // remainder left the default pool nothing
	h.granted(elsewhere, "viewer", "2.0", 8)               // what pune's 25% leaves stays in the default pool
	h.denied(elsewhere, "viewer", "2.0", 9, DenyInsufficient)
	h.granted(pune2, "viewer", "2.0", 2) // 25% of 10, rounded down
	h.denied(pune2, "viewer", "2.0", 3, DenyInsufficient)
	h.checkout(elsewhere, "viewer", "2.0", 0)
	h.granted(kassel, "viewer", "2.0", 8) // kassel names no viewer: the default pool serves it
	h.checkout(kassel, "viewer", "2.0", 0)
	h.granted(elsewhere, "viewer", "2.0", 8)
	h.denied(virtual, "viewer", "2.0", 1, DenyModel)

	pools := h.s.Pools()
	if len(pools) != 3 || pools[1].Name != "pune" || pools[2].Name != "kassel" {
		t.Fatalf("pools %+v", pools)
	}
	var got []string
	for _, p := range pools {
		for _, f := range p.Features {
			got = append(got, p.Name+" "+f.Feature+" "+f.Version.String()+" "+itoa(f.Allocated)+"/"+itoa(f.Used))
		}
	}
	want := []string{"default cad 1.0 0/0", "default viewer 2.0 8/8", "pune cad 1.0 10/10", "pune viewer 2.0 2/2", "kassel cad 1.0 4/4"}
	if strings.Join(got, ", ") != strings.Join(want, ", ") {
		t.Fatalf("pool use\n got %s\nwant %s", strings.Join(got, ", "), strings.Join(want, ", "))
	}
	if h.s.ModelText() != sitesModel {
		t.Fatal("model text not kept")
	}
	// Once the model denies a device, it renews nothing; its lease runs out.
	h.apply(&Hello{Device: DeviceInfo{ID: elsewhere, Type: DeviceVirtual}})
	res := h.checkout(elsewhere, "viewer", "2.0", 8)
	if res.Denied != DenyModel || res.Grant.Count != 8 {
		t.Fatalf("renewal by a denied device: %+v", res)
	}
	h.apply(&DeleteModel{})
	h.checkout(elsewhere, "viewer", "2.0", 0)
	h.granted(virtual, "viewer", "2.0", 1) // no model: no rule denies it
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func TestModelShrinkingRightsMarksShort(t *testing.T) {
	h := newHarness(t)
	h.rights("r", 1, fline("c", "cad", "1.0", 14), fline("v", "viewer", "2.0", 10))
	h.apply(&SetModel{Text: sitesModel})
	h.rights("r", 2, fline("c", "cad", "1.0", 6), fline("v", "viewer", "2.0", 10))
	for _, p := range h.s.Pools() {
		for _, f := range p.Features {
			if p.Name == "pune" && f.Feature == "cad" && (f.Allocated != 6 || f.Status != "short") {
				t.Fatalf("pune cad after shrink: %+v", f)
			}
		}
	}
}

func TestModelAndReservationsExclude(t *testing.T) {
	h := newHarness(t)
	h.rights("r", 1, fline("c", "cad", "1.0", 14), fline("v", "viewer", "2.0", 10))
	h.apply(&SetModel{Text: sitesModel})
	res := &SetReservations{Groups: []ReservationGroup{{Name: "g", Reservations: []Reservation{
		{HostID: mac(1), Entries: []ReservationEntry{{Feature: "cad", Version: version.MustParse("1.0"), Count: 1}}}}}}}
	h.refuse(res, ErrModelExclusive)
	h.apply(&DeleteModel{})
	h.apply(res)
	h.refuse(&SetModel{Text: sitesModel}, ErrModelExclusive)
}

func TestModelRefusals(t *testing.T) {
	h := newHarness(t)
	h.rights("r", 1, fline("c", "cad", "1.0", 8), fline("v", "viewer", "2.0", 10))
	err := h.refuse(&SetModel{Text: sitesModel}, ErrOverAllocated) // pune wants 10 of 8
	if !strings.Contains(err.Error(), "cad 1.0") {
		t.Fatalf("error does not name the feature: %v", err)
	}
	h.refuse(&SetModel{Text: `model "m" { partitions { partition "p" { "nope" 1.0 1 } } }`}, ErrUnknownFeature)
	h.refuse(&SetModel{Text: `model "m" { partitions { partition "p" { "cad" 3.0 1 } } }`}, ErrUnknownFeatureVer)
	err = h.refuse(&SetModel{Text: "model \"m\" {\n  partitions {\n    partition \"p\" { }\n    partition \"p\" { }\n  }\n}"}, ErrInvalidModel)
	if !strings.Contains(err.Error(), "line 4") {
		t.Fatalf("duplicate pool error does not name its line: %v", err)
	}
}

func TestRightsReloadRevokesNewestFirst(t *testing.T) {
	h := newHarness(t)
	h.rights("r", 1, fline("l", "cad", "1.0", 3))
	a, b, c := h.hello(1), h.hello(2), h.hello(3)
	h.granted(a, "cad", "1.0", 1)
	h.granted(b, "cad", "1.0", 1)
	h.granted(c, "cad", "1.0", 1)
	h.refuse(&LoadRights{Source: "r", Sequence: 1, Lines: []FeatureLine{fline("l", "cad", "1.0", 9)}}, ErrStaleRights)
	res := h.rights("r", 2, fline("l", "cad", "1.0", 2))
	if len(res.Changed) != 1 || res.Changed[0].Device != c {
		t.Fatalf("revoked %+v, want only the newest lease (device 3)", res.Changed)
	}
	res = h.apply(&RemoveRights{Source: "r"})
	if len(res.Changed) != 2 {
		t.Fatalf("removing the rights revoked %d leases, want 2", len(res.Changed))
	}
	h.denied(a, "cad", "1.0", 1, DenyNoSuchFeature)
}

func TestProperties(t *testing.T) {
	h := newHarness(t)
	h.apply(&SetProperty{Name: "licensing.renewInterval", Value: "20"})
	h.apply(&SetProperty{Name: "licensing.borrowInterval", Value: "90m"})
	if p, _ := h.s.Property("licensing.borrowInterval"); p.Value != "1h30m0s" {
		t.Fatalf("borrow %q, want canonical 1h30m0s", p.Value)
	}
	h.refuse(&SetProperty{Name: "licensing.renewInterval", Value: "0"}, ErrInvalidProperty)
	h.refuse(&SetProperty{Name: "licensing.renewInterval", Value: "x"}, ErrInvalidProperty)
	h.refuse(&SetProperty{Name: "server.allowDeviceDrop", Value: "maybe"}, ErrInvalidProperty)
	h.refuse(&SetProperty{Name: "logging.level", Value: "loud"}, ErrInvalidProperty)
	h.refuse(&SetProperty{Name: "no.such", Value: "1"}, ErrUnknownProperty)
	h.apply(&LoadRights{Source: "r", Sequence: 1, Lines: []FeatureLine{fline("l", "cad", "1.0", 1)},
		Locks: map[string]string{"licensing.borrowIntervalMax": "24h"}})
	h.refuse(&SetProperty{Name: "licensing.borrowIntervalMax", Value: "48h"}, ErrPropertyLocked)
	if p, _ := h.s.Property("licensing.borrowIntervalMax"); !p.Locked || p.Value != "24h0m0s" {
		t.Fatalf("locked property %+v", p)
	}
	h.refuse(&LoadRights{Source: "other", Sequence: 1, Lines: []FeatureLine{fline("m", "sim", "1.0", 1)},
		Locks: map[string]string{"licensing.borrowIntervalMax": "48h"}}, ErrConflictingLock)
	h.apply(&RemoveRights{Source: "r"})
	h.apply(&SetProperty{Name: "licensing.borrowIntervalMax", Value: "48h"})
}

func TestDuplicateRequestAppliedOnce(t *testing.T) {
	h := newHarness(t)
	h.rights("r", 1, fline("l", "cad", "1.0", 1))
	d := h.hello(1)
	checkout := h.request(&Checkout{Device: d, Feature: "cad", Version: version.MustParse("1.0"), Count: 1})
	if res, err := h.s.Apply(checkout); err != nil || res.Grant.Count != 1 {
		t.Fatalf("first apply: %+v %v", res, err)
	}
	h.checkout(d, "cad", "1.0", 0)
	// A late retry of the checkout must not grant the count again.
	res, err := h.s.Apply(checkout)
	if err != nil || !res.Duplicate || res.Grant.Count != 0 {
		t.Fatalf("retry: %+v %v, want a duplicate showing the returned lease", res, err)
	}
	if f := h.feature("cad", "1.0"); f.Used != 0 {
		t.Fatalf("retry applied again: %+v", f)
	}
	// Far older sequence numbers than the window are duplicates too.
	h.seq += 5000
	h.checkout(d, "cad", "1.0", 1)
	if res, _ := h.s.Apply(Request{ID: RequestID{Session: 1, Seq: 2}, At: h.now, Command: &Tick{}}); !res.Duplicate {
		t.Fatal("a sequence number far behind the window was applied")
	}
	if _, err := h.s.Apply(Request{ID: RequestID{}, At: h.now, Command: &Tick{}}); !errors.Is(err, ErrInvalidRequest) {
		t.Fatalf("zero request id: %v", err)
	}
}

func TestClockNeverGoesBack(t *testing.T) {
	h := newHarness(t)
	h.rights("r", 1, fline("l", "cad", "1.0", 1))
	d := h.hello(1)
	h.advance(time.Hour)
	h.apply(&Tick{})
	h.now = t0 // a new leader with a slow clock
	g := h.granted(d, "cad", "1.0", 1)
	if !h.s.Now().Equal(t0.Add(time.Hour)) || !g.Expiry.Equal(t0.Add(time.Hour+168*time.Hour)) {
		t.Fatalf("now %s expiry %s: the clock went back", h.s.Now(), g.Expiry)
	}
}

func TestBadInputChangesNothing(t *testing.T) {
	h := newHarness(t)
	h.rights("r", 1, fline("l", "cad", "1.0", 5))
	d := h.hello(1)
	tests := []struct {
		name string
		cmd  Command
		want error
	}{
		{"negative count", &Checkout{Device: d, Feature: "cad", Version: version.MustParse("1.0"), Count: -1}, ErrInvalidCount},
		{"absurd count", &Checkout{Device: d, Feature: "cad", Version: version.MustParse("1.0"), Count: MaxCount + 1}, ErrInvalidCount},
		{"no version", &Checkout{Device: d, Feature: "cad", Count: 1}, ErrInvalidCommand},
		{"unknown hostid type", &Checkout{Device: hostid.HostID{Value: "x", Type: 42}, Feature: "cad", Version: version.MustParse("1.0"), Count: 1}, hostid.ErrUnknownType},
		{"bad mac", &Hello{Device: DeviceInfo{ID: hostid.HostID{Value: "zz", Type: hostid.Ethernet}}}, hostid.ErrInvalidValue},
		{"unknown device", &Checkout{Device: mac(77), Feature: "cad", Version: version.MustParse("1.0"), Count: 1}, ErrUnknownDevice},
		{"negative line count", &LoadRights{Source: "x", Sequence: 1, Lines: []FeatureLine{fline("", "cad", "1.0", -3)}}, ErrInvalidCount},
		{"line ends before start", &LoadRights{Source: "x", Sequence: 1, Lines: []FeatureLine{{Name: "a", Version: version.MustParse("1"), Count: 1, Start: t0, Expiry: t0}}}, ErrInvalidFeature},
		{"sequence zero", &LoadRights{Source: "x", Sequence: 0}, ErrInvalidFeature},
		{"line id of another source", &LoadRights{Source: "x", Sequence: 1, Lines: []FeatureLine{fline("l", "cad", "1.0", 1)}}, ErrInvalidFeature},
		{"reservation for unknown feature", &SetReservations{Groups: []ReservationGroup{{Name: "g", Reservations: []Reservation{{HostID: mac(1), Entries: []ReservationEntry{{Feature: "nope", Version: version.MustParse("1.0"), Count: 1}}}}}}}, ErrUnknownFeature},
		{"reservation of zero", &SetReservations{Groups: []ReservationGroup{{Name: "g", Reservations: []Reservation{{HostID: mac(1), Entries: []ReservationEntry{{Feature: "cad", Version: version.MustParse("1.0"), Count: 0}}}}}}}, ErrInvalidCount},
		{"model syntax", &SetModel{Text: `model "m" { on any() { use } }`}, ErrInvalidModel},
		{"unknown rights", &RemoveRights{Source: "nope"}, ErrUnknownRights},
		{"too many attributes", &Hello{Device: DeviceInfo{ID: mac(2), Attributes: manyAttributes(MaxAttributes + 1)}}, ErrInvalidDevice},
		{"control character in alias", &Hello{Device: DeviceInfo{ID: mac(2), Alias: "a\x07b"}}, ErrInvalidDevice},
		{"unknown command", unknownCommand{}, ErrUnknownCommand},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h.t = t
			h.refuse(tt.cmd, tt.want)
		})
	}
}

type unknownCommand struct{}

func (unknownCommand) Type() string    { return "unknown" }
func (unknownCommand) validate() error { return nil }

func manyAttributes(n int) map[string]string {
	m := map[string]string{}
	for i := range n {
		m["k"+itoa(int64(i))] = "v"
	}
	return m
}

func TestFeaturesView(t *testing.T) {
	h := newHarness(t)
	a := fline("a", "cad", "1.0", 3)
	a.Expiry = t0.Add(48 * time.Hour)
	b := fline("b", "cad", "1.0", 2)
	b.Expiry = t0.Add(96 * time.Hour)
	b.Overdraft = 1
	b.VendorString = "site=pune"
	b.Start = t0.Add(-time.Hour)
	c := fline("c", "sim", "2.0", 1)
	h.rights("r", 1, a, b, c)
	d := h.hello(1, func(i *DeviceInfo) { i.Alias = "bench-1" })
	h.granted(d, "cad", "1.0", 4)
	fs := h.s.Features()
	if len(fs) != 2 {
		t.Fatalf("features %+v", fs)
	}
	cad := fs[0]
	if cad.Total != 5 || cad.Used != 4 || cad.Available != 1 || cad.Overdraft != 1 || !cad.Counted ||
		!cad.FirstExpiry.Equal(a.Expiry) || !cad.LastExpiry.Equal(b.Expiry) {
		t.Fatalf("cad row %+v", cad)
	}
	if !fs[1].LastExpiry.IsZero() {
		t.Fatalf("sim is permanent, last expiry %s", fs[1].LastExpiry)
	}
	det, err := h.s.FeatureDetails("cad", version.MustParse("1.0"))
	if err != nil || len(det.Served) != 1 || det.Served[0].Alias != "bench-1" || det.Served[0].Count != 4 ||
		len(det.VendorStrings) != 1 || len(det.Lines) != 2 || !det.Start.IsZero() {
		t.Fatalf("details %+v %v", det, err)
	}
	// The lease draws on the longest line first and expires with the shorter.
	if want := a.Expiry; !det.Served[0].Expiry.Equal(want) {
		t.Fatalf("served expiry %s, want %s", det.Served[0].Expiry, want)
	}
	if _, err := h.s.FeatureDetails("cad", version.MustParse("9")); !errors.Is(err, ErrUnknownFeatureVer) {
		t.Fatalf("unknown version: %v", err)
	}
	dd, err := h.s.Device(d)
	if err != nil || len(dd.Leases) != 1 || !dd.Expiry.Equal(a.Expiry) {
		t.Fatalf("device detail %+v %v", dd, err)
	}
}
