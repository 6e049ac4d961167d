package core

import (
	"bytes"
	"testing"
	"time"

	"github.com/tallyhq/tally/core/version"
)

func TestRestoreBackup(t *testing.T) {
	h := newHarness(t)
	h.rights("r", 1, fline("l", "cad", "1.0", 10))
	a, b := h.hello(1), h.hello(2)
	h.granted(a, "cad", "1.0", 3)
	h.apply(&Audited{Actor: Actor{User: "admin", Address: "192.0.2.1"}, Command: &SetProperty{Name: "server.pageSize", Value: "50"}})
	backup := h.snapshot()

	// Afterwards: more leases, a property, another device, more rights.
	h.advance(time.Minute)
	h.granted(b, "cad", "1.0", 5)
	h.apply(&SetProperty{Name: "server.pageSize", Value: "70"})
	h.rights("r", 2, fline("l", "cad", "1.0", 20))
	before := h.s.Now()

	// A damaged backup is refused and changes nothing.
	h.refuse(&RestoreBackup{Snapshot: backup[:len(backup)/2]}, ErrInvalidSnapshot)
	h.refuse(&RestoreBackup{}, ErrInvalidSnapshot)

	h.advance(time.Minute)
	h.apply(&Audited{Actor: Actor{User: "admin", Address: "192.0.2.1"}, Command: &RestoreBackup{Snapshot: backup}})
	if f := h.feature("cad", "1.0"); f.Total != 10 || f.Used != 3 {
		t.Fatalf("after restore: %+v", f)
	}
	if p, _ := h.s.Property("server.pageSize"); p.Value != "50" {
		t.Fatalf("pageSize %q", p.Value)
	}
	if d, err := h.s.Device(b); err != nil || len(d.Leases) != 0 {
		t.Fatalf("device %v after restore: %+v %v", b, d, err)
	}
	if !h.s.Now().After(before) {
		t.Fatalf("the clock went back to %v", h.s.Now())
	}
	// The restore is the newest record of the restored audit chain.
	recs := h.s.Audit(0, 0)
	if len(recs) != 2 || recs[1].Action != "restoreBackup" || h.s.VerifyAudit() != nil {
		t.Fatalf("audit after restore: %+v", recs)
	}
	// Retries of requests made before the restore are still recognised.
	if res, err := h.s.Apply(Request{ID: RequestID{Session: 1, Seq: 1}, At: h.now, Command: &Tick{}}); err != nil || !res.Duplicate {
		t.Fatalf("retry after restore: %+v %v", res, err)
	}
	// The stale rights check follows the backup: sequence 2 loads again.
	h.rights("r", 2, fline("l", "cad", "1.0", 20))
	if f := h.feature("cad", "1.0"); f.Total != 20 {
		t.Fatalf("after reload: %+v", f)
	}
}

func TestRestoreBackupEndsLeasesDueMeanwhile(t *testing.T) {
	h := newHarness(t)
	h.rights("r", 1, fline("l", "cad", "1.0", 10))
	a := h.hello(1)
	h.apply(&Checkout{Device: a, Feature: "cad", Version: version.MustParse("1.0"), Count: 2, Borrow: time.Hour})
	backup := h.snapshot()
	h.advance(2 * time.Hour)
	h.apply(&RestoreBackup{Snapshot: backup})
	if f := h.feature("cad", "1.0"); f.Used != 0 {
		t.Fatalf("a lease that ended meanwhile came back: %+v", f)
	}
	if again := h.snapshot(); bytes.Equal(again, backup) {
		t.Fatal("nothing changed")
	}
}
