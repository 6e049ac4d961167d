package core

import (
	"crypto/rand"
	"crypto/x509"
	"errors"
	"testing"
	"time"

	"github.com/tallyhq/tally/core/licensingid"
)

func newMainID(t *testing.T, node string) MainLicensingID {
	t.Helper()
	id, err := licensingid.Generate(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	key, err := x509.MarshalPKCS8PrivateKey(id.Key)
	if err != nil {
		t.Fatal(err)
	}
	return MainLicensingID{Certificate: id.Certificate, Key: key, Node: node}
}

func TestMainLicensingID(t *testing.T) {
	h := newHarness(t)
	if _, ok := h.s.MainLicensingID(); ok {
		t.Fatal("a new state has a main licensing ID")
	}
	first, second := newMainID(t, "n1"), newMainID(t, "n2")
	h.apply(&SetMainLicensingID{ID: first})
	// Another node proposing its own at start changes nothing: the first wins.
	h.apply(&SetMainLicensingID{ID: second})
	if got, _ := h.s.MainLicensingID(); got.Node != "n1" {
		t.Fatalf("main ID from %q, want n1", got.Node)
	}
	backup := h.snapshot()

	// A restored licensing-ID backup replaces it.
	h.apply(&Audited{Actor: Actor{User: "admin", Address: "192.0.2.1"}, Command: &SetMainLicensingID{ID: second, Replace: true}})
	if got, _ := h.s.MainLicensingID(); got.Node != "n2" {
		t.Fatalf("after replace: %q", got.Node)
	}
	if recs := h.s.Audit(0, 0); len(recs) != 1 || recs[0].Action != "setMainLicensingId" {
		t.Fatalf("audit: %+v", recs)
	}

	// A database backup from before does not bring the old ID back.
	h.apply(&RestoreBackup{Snapshot: backup})
	if got, _ := h.s.MainLicensingID(); got.Node != "n2" {
		t.Fatalf("a database restore changed the licensing ID to %q's", got.Node)
	}

	// Snapshots keep it.
	back, err := Restore(Config{}, h.snapshot())
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := back.MainLicensingID(); got.Node != "n2" || string(got.Key) != string(second.Key) {
		t.Fatalf("restored snapshot: %+v", got)
	}
}

func TestMainLicensingIDRefusals(t *testing.T) {
	h := newHarness(t)
	good, other := newMainID(t, "n1"), newMainID(t, "n2")
	for name, id := range map[string]MainLicensingID{
		"no certificate":      {Key: good.Key},
		"no key":              {Certificate: good.Certificate},
		"garbage certificate": {Certificate: []byte("not DER"), Key: good.Key},
		"garbage key":         {Certificate: good.Certificate, Key: []byte("not DER")},
		"key of another ID":   {Certificate: good.Certificate, Key: other.Key},
		"node name":           {Certificate: good.Certificate, Key: good.Key, Node: "a\nb"},
	} {
		err := h.refuse(&SetMainLicensingID{ID: id}, ErrInvalidLicensingID)
		if !errors.Is(err, ErrInvalidLicensingID) {
			t.Errorf("%s: %v", name, err)
		}
	}
}
