package licensingid

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
)

// The fuzz target runs the key derivation only for headers at most this
// costly, so that an iteration stays fast; everything else it checks through
// parseBackup, which Restore runs first.
const (
	fuzzMaxMemoryKiB = 256
	fuzzMaxTime      = 2
)

// FuzzRestore feeds arbitrary files and passwords to Restore. Restore must
// not panic, must refuse whatever parseBackup refuses with ErrDamaged, and
// must return either a consistent ID, ErrWrongPassword or ErrDamaged.
func FuzzRestore(f *testing.F) {
	id, err := Generate(testNow, testRandom(50))
	if err != nil {
		f.Fatal(err)
	}
	valid := cheapBackup(f, id, 51)
	f.Add(valid, testPassword)
	f.Add(valid, []byte("wrong"))
	f.Add(valid[:headerLen], testPassword)
	huge := bytes.Clone(valid)
	binary.BigEndian.PutUint32(huge[offMemory:], 0xffffffff)
	f.Add(reseal(huge), testPassword)

	f.Fuzz(func(t *testing.T, data, password []byte) {
		sealed, err := parseBackup(data)
		if err != nil {
			if !errors.Is(err, ErrDamaged) {
				t.Fatalf("parseBackup error %v does not wrap ErrDamaged", err)
			}
			if id, err := Restore(data, password); id != nil || !errors.Is(err, ErrDamaged) {
				t.Fatalf("parseBackup refused the file but Restore = %v, %v", id, err)
			}
			return
		}
		if sealed.KDF.MemoryKiB > fuzzMaxMemoryKiB || sealed.KDF.Time > fuzzMaxTime {
			return
		}
		got, err := Restore(data, password)
		switch {
		case err == nil:
			if _, err := newID(got.Key, got.Certificate); err != nil {
				t.Fatalf("Restore returned an inconsistent ID: %v", err)
			}
		case errors.Is(err, ErrWrongPassword), errors.Is(err, ErrDamaged):
			if got != nil {
				t.Fatalf("Restore returned an ID with error %v", err)
			}
		default:
			t.Fatalf("Restore error %v is neither ErrWrongPassword nor ErrDamaged", err)
		}
	})
}
