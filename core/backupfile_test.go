package core

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"testing"

	"github.com/tallyhq/tally/core/sealed"
)

// TestSealedBackup: a database backup sealed under a password opens with
// it, to a snapshot that restores; a wrong password, a damaged file and a
// weak password are refused.
func TestSealedBackup(t *testing.T) {
	h := newHarness(t)
	h.rights("r", 1, fline("l", "cad", "1.0", 2))
	snap := h.snapshot()
	pw := []byte("backup password")
	random := rand.NewChaCha8([32]byte{7})
	data, err := sealBackup(snap, pw, random, sealed.KDF{MemoryKiB: 64, Time: 1, Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	if !IsSealedBackup(data) || IsSealedBackup(snap) || bytes.Contains(data, []byte("cad")) {
		t.Fatal("the sealed backup is not told from a snapshot, or shows its contents")
	}
	back, err := OpenBackup(data, pw)
	if err != nil || !bytes.Equal(back, snap) {
		t.Fatalf("OpenBackup: %v", err)
	}
	other := newHarness(t)
	other.apply(&RestoreBackup{Snapshot: back})
	if !bytes.Equal(other.snapshot(), snap) {
		t.Fatal("the opened backup does not restore the state")
	}
	if _, err := OpenBackup(data, []byte("backup passworD")); !errors.Is(err, ErrBackupPassword) {
		t.Fatalf("wrong password: %v", err)
	}
	if _, err := OpenBackup(data[:len(data)-1], pw); !errors.Is(err, ErrBackupDamaged) {
		t.Fatalf("truncated: %v", err)
	}
	if _, err := OpenBackup(snap, pw); !errors.Is(err, ErrBackupDamaged) {
		t.Fatalf("a snapshot as it is: %v", err)
	}
	for _, weak := range [][]byte{nil, []byte("short"), bytes.Repeat([]byte("x"), MaxBackupPassword+1)} {
		if _, err := SealBackup(snap, weak, random); err == nil {
			t.Errorf("sealed under a password of %d bytes", len(weak))
		}
	}
}
