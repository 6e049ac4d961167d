package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tallyhq/tally/transport/discovery"
)

// TestInviteTrust: which licensing IDs may invite a device, and what is
// pinned after an onboarding.
func TestInviteTrust(t *testing.T) {
	a, b := discovery.Fingerprint{1}, discovery.Fingerprint{2}
	dir := t.TempDir()
	path := filepath.Join(dir, "server.fingerprint")

	// Nothing pinned, no flag: nobody.
	tr, err := newInviteTrust("", false, path, nil)
	if err != nil || tr.accepts(a) {
		t.Fatalf("no pin, no flag: %v, accepts=%v", err, tr.accepts(a))
	}
	// --accept-first-invite: the first one, then only it.
	tr, _ = newInviteTrust("", true, path, nil)
	if !tr.accepts(a) || !tr.accepts(b) {
		t.Fatal("accept-first refuses while nothing is pinned")
	}
	if saved, err := tr.pin(a); !saved || err != nil {
		t.Fatalf("pin: %v %v", saved, err)
	}
	if !tr.accepts(a) || tr.accepts(b) {
		t.Fatal("after pinning a, the trust is not a alone")
	}
	if got, _ := readTrustFile(path); got != a {
		t.Fatalf("trust file holds %s", got)
	}
	// A later start reads the pin; --identity must agree with it.
	if tr, err = newInviteTrust("", true, path, nil); err != nil || tr.accepts(b) || !tr.accepts(a) {
		t.Fatalf("restart: %v", err)
	}
	if _, err := newInviteTrust(b.String(), false, path, nil); err == nil || !strings.Contains(err.Error(), "not the licensing ID pinned") {
		t.Fatalf("--identity against the pin: %v", err)
	}
	if _, err := newInviteTrust("not hex", false, filepath.Join(dir, "none"), nil); err == nil {
		t.Fatal("a bad --identity was taken")
	}
	// --identity alone: that one, pinned in the file after onboarding.
	other := filepath.Join(dir, "other")
	tr, err = newInviteTrust(b.String(), false, other, nil)
	if err != nil || !tr.accepts(b) || tr.accepts(a) {
		t.Fatalf("--identity: %v", err)
	}
	if saved, err := tr.pin(b); !saved || err != nil {
		t.Fatalf("pin: %v %v", saved, err)
	}
	if saved, err := tr.pin(b); saved || err != nil {
		t.Fatalf("pinning again: %v %v", saved, err)
	}
	// A damaged trust file stops listen from starting.
	os.WriteFile(other, []byte("garbage\n"), 0o600)
	if _, err := newInviteTrust("", true, other, nil); err == nil {
		t.Fatal("a damaged trust file was taken")
	}
}
