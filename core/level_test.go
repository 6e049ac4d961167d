package core

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/tallyhq/tally/core/version"
)

func TestLevelStartsAtOneAndOnlyRises(t *testing.T) {
	h := newHarness(t)
	if got := h.s.Level(); got != 1 {
		t.Fatalf("a new state is at level %d", got)
	}
	before := h.snapshot()
	if bytes.Contains(before, []byte(`"level"`)) {
		t.Fatal("a level 1 snapshot names its level; an older server could not read it")
	}
	for _, bad := range []int{0, -1, Level + 1} {
		h.refuse(&RaiseLevel{Level: bad}, ErrInvalidLevel)
	}
	h.apply(&RaiseLevel{Level: 2})
	if got := h.s.Level(); got != 2 {
		t.Fatalf("level %d after raising to 2", got)
	}
	audit := h.s.audit[len(h.s.audit)-1]
	if audit.Action != "raiseLevel" || !strings.Contains(audit.Detail, "from 1 to 2") {
		t.Fatalf("audit %+v", audit)
	}
	n := len(h.s.audit)
	h.apply(&RaiseLevel{Level: 1})
	h.apply(&RaiseLevel{Level: 2})
	if h.s.Level() != 2 || len(h.s.audit) != n {
		t.Fatalf("a lower or equal level changed something: level %d, %d audit records", h.s.Level(), len(h.s.audit))
	}
	snap, back := h.restoredCopy()
	if back.Level() != 2 || !bytes.Contains(snap, []byte(`"level":2`)) {
		t.Fatalf("restored at level %d", back.Level())
	}
}

func TestLevelOneNumbersNoConnection(t *testing.T) {
	h := newHarness(t)
	h.rights("r", 1, fline("l", "cad", "1.0", 2))
	if res := h.apply(&Hello{Device: DeviceInfo{ID: mac(1), Type: DevicePhysical}}); res.Conn != 0 {
		t.Fatalf("level 1 numbered a connection: %d", res.Conn)
	}
	// Commands without a connection number are what older nodes send.
	h.granted(mac(1), "cad", "1.0", 1)
	if bytes.Contains(h.snapshot(), []byte(`"conn"`)) {
		t.Fatal("a level 1 snapshot holds connection numbers")
	}
}

func connHello(h *harness, n int) uint64 {
	h.t.Helper()
	res := h.apply(&Hello{Device: DeviceInfo{ID: mac(n), Type: DevicePhysical}})
	if res.Conn == 0 {
		h.t.Fatal("the hello numbered no connection")
	}
	return res.Conn
}

// A request the device gave up on, arriving after the device asked again
// on a new connection, changes nothing: the lease stays as the new
// connection left it.
func TestSupersededConnection(t *testing.T) {
	h := newHarness(t)
	h.apply(&RaiseLevel{Level: 2})
	h.rights("r", 1, fline("l", "cad", "1.0", 4), fline("v", "viewer", "1.0", 4))
	d := mac(1)
	first := connHello(h, 1)
	out := func(feature string, count int64, conn uint64) *Checkout {
		return &Checkout{Device: d, Feature: feature, Version: version.MustParse("1.0"), Count: count, Conn: conn}
	}
	if res := h.apply(out("cad", 2, first)); res.Grant.Count != 2 {
		t.Fatalf("granted %d", res.Grant.Count)
	}
	second := connHello(h, 1)
	if second <= first {
		t.Fatalf("connection %d after %d", second, first)
	}
	// Until the new connection asks for cad, the first one still may: the
	// device has said nothing newer about it.
	h.apply(out("cad", 3, first))
	if res := h.apply(out("cad", 0, second)); res.Grant.Count != 0 {
		t.Fatalf("return left %d", res.Grant.Count)
	}
	// The first connection's checkout comes late.
	err := h.refuse(out("cad", 3, first), ErrSuperseded)
	if !strings.Contains(err.Error(), "connection 2") {
		t.Fatalf("error %q does not say which connection", err)
	}
	// A number the device was never given is refused too.
	h.refuse(out("cad", 1, second+1), ErrSuperseded)
	// Another feature, asked for on the first connection only, is the
	// first connection's: two programs on one device do not disturb each
	// other.
	h.apply(out("viewer", 1, first))
	h.apply(out("cad", 1, second))
	h.apply(out("viewer", 2, first))

	// The end of the first connection frees what only it asked for.
	h.apply(&SetProperty{Name: "licensing.releaseOnDisconnect", Value: "true"})
	res := h.apply(&Disconnect{Device: d, Conn: first})
	if len(res.Changed) != 1 || res.Changed[0].Feature != "viewer" {
		t.Fatalf("the first connection's end freed %+v, want viewer alone", res.Changed)
	}
	if f := h.feature("cad", "1.0"); f.Used != 1 {
		t.Fatalf("the end of a replaced connection freed the newer lease: %+v", f)
	}
	// An end from a connection never given changes nothing.
	h.apply(&Disconnect{Device: d, Conn: second + 5})
	if f := h.feature("cad", "1.0"); f.Used != 1 {
		t.Fatalf("an unknown connection's end freed %+v", f)
	}
	// Names the device never held leave nothing behind, however many.
	n := len(h.s.devices[d].asked)
	for i := range 50 {
		h.apply(out(fmt.Sprintf("nothing-%d", i), 1, second))
	}
	if got := len(h.s.devices[d].asked); got != n {
		t.Fatalf("denied checkouts of unknown features grew the record from %d to %d", n, got)
	}
	// The numbers survive a snapshot, so that every node refuses alike.
	_, back := h.restoredCopy()
	if bd := back.devices[d]; bd.conn != second || bd.askedBy("cad") != second {
		t.Fatalf("restored connection %d, cad asked by %d", bd.conn, bd.askedBy("cad"))
	}
	// Zero names no connection and is served, as from an older node; the
	// current connection's end frees the lease.
	h.apply(out("cad", 2, 0))
	h.apply(&Disconnect{Device: d, Conn: second})
	if f := h.feature("cad", "1.0"); f.Used != 0 {
		t.Fatalf("the current connection's end left %+v", f)
	}
}

func TestOnboardNumbersTheConnection(t *testing.T) {
	h := newHarness(t)
	h.apply(&RaiseLevel{Level: 2})
	h.apply(audited(oneTimeKeys(1)))
	hello := connHello(h, 1)
	res := h.apply(onboard(1, "secret-1"))
	if res.Conn <= hello {
		t.Fatalf("onboard answered connection %d after hello's %d", res.Conn, hello)
	}
	// The retry of an onboard whose answer was lost numbers a new one.
	again := h.apply(onboard(1, "secret-1"))
	if again.Conn <= res.Conn {
		t.Fatalf("retried onboard answered connection %d after %d", again.Conn, res.Conn)
	}
	h.rights("r", 1, fline("l", "cad", "1.0", 1))
	h.apply(&Checkout{Device: mac(1), Feature: "cad", Version: version.MustParse("1.0"), Count: 1, Conn: again.Conn})
	h.refuse(&Checkout{Device: mac(1), Feature: "cad", Version: version.MustParse("1.0"), Count: 0, Conn: res.Conn}, ErrSuperseded)
}

// A database restore keeps the running cluster's level and connection
// numbers, so that connected devices go on.
func TestRestoreBackupKeepsConnections(t *testing.T) {
	h := withAdmin(t)
	h.rights("r", 1, fline("l", "cad", "1.0", 4))
	h.apply(&Hello{Device: DeviceInfo{ID: mac(1), Type: DevicePhysical}})
	backup := h.snapshot() // level 1, no numbers
	h.apply(&RaiseLevel{Level: 2})
	conn := connHello(h, 1)
	connHello(h, 2)
	h.apply(audited(&RestoreBackup{Snapshot: backup}))
	if h.s.Level() != 2 {
		t.Fatalf("a database restore lowered the level to %d", h.s.Level())
	}
	h.apply(&Checkout{Device: mac(1), Feature: "cad", Version: version.MustParse("1.0"), Count: 1, Conn: conn})
	if _, ok := h.s.devices[mac(2)]; ok {
		t.Fatal("a device the backup does not hold came back")
	}
}

func TestRestoreRefusesBadLevels(t *testing.T) {
	h := newHarness(t)
	h.apply(&RaiseLevel{Level: 2})
	connHello(h, 1)
	good := h.snapshot()
	edit := func(f func(map[string]any)) []byte {
		var c map[string]any
		_ = json.Unmarshal(good, &c)
		f(c)
		b, _ := json.Marshal(c)
		return b
	}
	refuseRestores(t, good, map[string][]byte{
		"level too high":     edit(func(c map[string]any) { c["level"] = Level + 1 }),
		"level negative":     edit(func(c map[string]any) { c["level"] = -1 }),
		"numbers at level 1": edit(func(c map[string]any) { delete(c, "level") }),
		"asked by a later connection": edit(func(c map[string]any) {
			d := c["devices"].([]any)[0].(map[string]any)
			d["asked"] = []any{map[string]any{"feature": "cad", "conn": 9}}
		}),
		"asked twice": edit(func(c map[string]any) {
			d := c["devices"].([]any)[0].(map[string]any)
			a := map[string]any{"feature": "cad", "conn": 1}
			d["asked"] = []any{a, a}
		}),
	})
	if _, err := Restore(Config{}, good); err != nil {
		t.Fatal(err)
	}
}

// The device's first request for a feature is abandoned and the device
// returns the feature on its next connection: the return is acknowledged
// holding nothing, and the abandoned checkout cannot land after it.
func TestAbandonedFirstRequest(t *testing.T) {
	h := newHarness(t)
	h.apply(&RaiseLevel{Level: 2})
	h.rights("r", 1, fline("l", "cad", "1.0", 4))
	first := connHello(h, 1)
	second := connHello(h, 1)
	ret := &Checkout{Device: mac(1), Feature: "cad", Version: version.MustParse("1.0"), Count: 0, Conn: second}
	if res := h.apply(ret); res.Grant.Count != 0 {
		t.Fatalf("return: %+v", res.Grant)
	}
	// Another version of the same feature counts as the same feature.
	h.refuse(&Checkout{Device: mac(1), Feature: "cad", Version: version.MustParse("1.0.1"), Count: 2, Conn: first}, ErrSuperseded)
	h.refuse(&Checkout{Device: mac(1), Feature: "cad", Version: version.MustParse("1.0"), Count: 2, Conn: first}, ErrSuperseded)
}
