package licensingid

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"os"
	"testing"
)

// cheapKDF keeps the key derivation in tests fast; Backup itself always uses
// defaultKDF.
var cheapKDF = kdfParams{MemoryKiB: 64, Time: 1, Threads: 1}

var testPassword = []byte("correct horse battery staple")

func cheapBackup(t testing.TB, id *ID, seed byte) []byte {
	t.Helper()
	data, err := backup(id, testPassword, testRandom(seed), cheapKDF)
	if err != nil {
		t.Fatalf("backup: %v", err)
	}
	return data
}

// reseal recomputes the checksum of a backup after a test has changed it, as
// someone tampering on purpose would.
func reseal(data []byte) []byte {
	body := data[:len(data)-checksumLen]
	sum := sha256.Sum256(body)
	return append(bytes.Clone(body), sum[:]...)
}

func sameID(t *testing.T, got, want *ID) {
	t.Helper()
	if got == nil || !bytes.Equal(got.Certificate, want.Certificate) || !got.Key.Equal(want.Key) {
		t.Fatalf("restored ID %v is not the backed-up ID %v", got, want)
	}
}

func TestBackupRoundTrip(t *testing.T) {
	id := generate(t, 20)
	data := cheapBackup(t, id, 21)
	got, err := Restore(data, testPassword)
	if err != nil {
		t.Fatalf("Restore: %v", err)
	}
	sameID(t, got, id)
	if got.Fingerprint() != id.Fingerprint() || got.String() != id.String() {
		t.Errorf("restored ID shows %s %s, want %s %s", got.String(), got.Fingerprint(), id.String(), id.Fingerprint())
	}
	if again := cheapBackup(t, id, 22); bytes.Equal(again, data) {
		t.Errorf("two backups with different randomness are identical")
	}
}

func TestBackupDefaultIsMemoryHard(t *testing.T) {
	id := generate(t, 23)
	data, err := Backup(id, testPassword, testRandom(24))
	if err != nil {
		t.Fatalf("Backup: %v", err)
	}
	sealed, err := parseBackup(data)
	if err != nil {
		t.Fatalf("parseBackup: %v", err)
	}
	if sealed.KDF != defaultKDF() || sealed.KDF.MemoryKiB < 64<<10 || sealed.KDF.Time < 3 {
		t.Errorf("Backup used %+v, want the memory-hard default %+v", sealed.KDF, defaultKDF())
	}
	got, err := Restore(data, testPassword)
	if err != nil {
		t.Fatalf("Restore: %v", err)
	}
	sameID(t, got, id)
}

func TestRestoreWrongPassword(t *testing.T) {
	data := cheapBackup(t, generate(t, 25), 26)
	for _, pw := range [][]byte{nil, []byte("correct horse battery stapl"), []byte("Correct horse battery staple")} {
		if id, err := Restore(data, pw); id != nil || !errors.Is(err, ErrWrongPassword) {
			t.Errorf("Restore with %q = %v, %v; want ErrWrongPassword", pw, id, err)
		}
	}
}

func TestRestoreRefusesEveryTruncation(t *testing.T) {
	data := cheapBackup(t, generate(t, 27), 28)
	for n := range len(data) {
		if id, err := Restore(data[:n], testPassword); id != nil || !errors.Is(err, ErrDamaged) {
			t.Fatalf("Restore of the first %d of %d bytes = %v, %v; want ErrDamaged", n, len(data), id, err)
		}
	}
	if id, err := Restore(append(bytes.Clone(data), 0), testPassword); id != nil || !errors.Is(err, ErrDamaged) {
		t.Fatalf("Restore with a byte appended = %v, %v; want ErrDamaged", id, err)
	}
}

func TestRestoreRefusesEveryBitFlip(t *testing.T) {
	data := cheapBackup(t, generate(t, 29), 30)
	for i := range len(data) * 8 {
		flipped := bytes.Clone(data)
		flipped[i/8] ^= 1 << (i % 8)
		if id, err := Restore(flipped, testPassword); id != nil || !errors.Is(err, ErrDamaged) {
			t.Fatalf("Restore with bit %d of byte %d flipped = %v, %v; want ErrDamaged", i%8, i/8, id, err)
		}
	}
}

// TestRestoreRefusesTampering changes a backup and fixes its checksum: the
// AEAD, which also covers the header, refuses it.
func TestRestoreRefusesTampering(t *testing.T) {
	data := cheapBackup(t, generate(t, 31), 32)
	tests := []struct {
		name   string
		offset int
	}{
		{"memory", offMemory + 3},
		{"time", offTime + 3},
		{"salt", offSalt},
		{"nonce", offNonce + nonceLen - 1},
		{"ciphertext", headerLen + 10},
		{"tag", len(data) - checksumLen - 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tampered := bytes.Clone(data)
			tampered[tt.offset] ^= 0x02
			tampered = reseal(tampered)
			if id, err := Restore(tampered, testPassword); id != nil || !errors.Is(err, ErrWrongPassword) {
				t.Fatalf("Restore = %v, %v; want ErrWrongPassword", id, err)
			}
		})
	}
}

// TestRestoreBoundsHeader crafts headers with a valid checksum that ask for
// too much, or are otherwise wrong; each is refused before any key
// derivation.
func TestRestoreBoundsHeader(t *testing.T) {
	valid := cheapBackup(t, generate(t, 33), 34)
	put32 := func(off int, v uint32) func([]byte) {
		return func(b []byte) { binary.BigEndian.PutUint32(b[off:], v) }
	}
	tests := []struct {
		name   string
		change func([]byte)
	}{
		{"magic", func(b []byte) { copy(b, "TALLYIDX") }},
		{"version 0", func(b []byte) { b[offVersion] = 0 }},
		{"version 2", func(b []byte) { b[offVersion] = 2 }},
		{"memory above 1 GiB", put32(offMemory, maxMemoryKiB+1)},
		{"memory 4 GiB", put32(offMemory, 0xffffffff)},
		{"memory 0", put32(offMemory, 0)},
		{"memory below 8 KiB a lane", func(b []byte) { put32(offMemory, 63)(b); b[offThreads] = 8 }},
		{"time 0", put32(offTime, 0)},
		{"time 17", put32(offTime, maxTime+1)},
		{"time 2^32-1", put32(offTime, 0xffffffff)},
		{"threads 0", func(b []byte) { b[offThreads] = 0 }},
		{"threads 17", func(b []byte) { b[offThreads] = maxThreads + 1 }},
		{"ciphertext length short", put32(offCipherLen, uint32(len(valid)-headerLen-checksumLen-1))},
		{"ciphertext length long", put32(offCipherLen, uint32(len(valid)-headerLen-checksumLen+1))},
		{"ciphertext length huge", put32(offCipherLen, 0xffffffff)},
		{"ciphertext length below a tag", put32(offCipherLen, tagLen)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			crafted := bytes.Clone(valid)
			tt.change(crafted)
			crafted = reseal(crafted)
			if _, err := parseBackup(crafted); !errors.Is(err, ErrDamaged) {
				t.Fatalf("parseBackup = %v, want ErrDamaged", err)
			}
			if id, err := Restore(crafted, testPassword); id != nil || !errors.Is(err, ErrDamaged) {
				t.Fatalf("Restore = %v, %v; want ErrDamaged", id, err)
			}
		})
	}

	// The bounds themselves are accepted; parseBackup does not derive a key.
	edge := bytes.Clone(valid)
	binary.BigEndian.PutUint32(edge[offMemory:], maxMemoryKiB)
	binary.BigEndian.PutUint32(edge[offTime:], maxTime)
	edge[offThreads] = maxThreads
	if _, err := parseBackup(reseal(edge)); err != nil {
		t.Errorf("parseBackup at the bounds: %v", err)
	}
}

// TestRestoreRefusesBadContents seals plaintexts that are not a licensing ID
// under the right password.
func TestRestoreRefusesBadContents(t *testing.T) {
	a, b := generate(t, 35), generate(t, 36)
	aKey, _ := a.KeyPEM()
	aDER := findPEM(aKey, "PRIVATE KEY").Bytes
	withLen := func(n int, rest ...[]byte) []byte {
		p := binary.BigEndian.AppendUint16(nil, uint16(n))
		for _, r := range rest {
			p = append(p, r...)
		}
		return p
	}
	tests := []struct {
		name      string
		plaintext []byte
		also      error
	}{
		{"key length 0", withLen(0, aDER, a.Certificate), nil},
		{"key length past the end", withLen(len(aDER)+len(a.Certificate), aDER, a.Certificate), nil},
		{"no certificate", withLen(len(aDER), aDER), nil},
		{"key is not PKCS#8", withLen(4, []byte("junk"), a.Certificate), ErrMalformed},
		{"certificate is junk", withLen(len(aDER), aDER, []byte("junk")), ErrMalformed},
		{"certificate of another ID", withLen(len(aDER), aDER, b.Certificate), ErrMismatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data, err := seal(tt.plaintext, testPassword, testRandom(37), cheapKDF)
			if err != nil {
				t.Fatal(err)
			}
			id, err := Restore(data, testPassword)
			if id != nil || !errors.Is(err, ErrDamaged) || (tt.also != nil && !errors.Is(err, tt.also)) {
				t.Fatalf("Restore = %v, %v; want ErrDamaged", id, err)
			}
		})
	}
}

func TestBackupRefuses(t *testing.T) {
	a, b := generate(t, 38), generate(t, 39)
	tests := []struct {
		name     string
		id       *ID
		password []byte
		want     error
	}{
		{"empty password", a, nil, ErrEmptyPassword},
		{"no ID", nil, testPassword, ErrMalformed},
		{"mismatched ID", &ID{Key: a.Key, Certificate: b.Certificate}, testPassword, ErrMismatch},
		{"no key", &ID{Certificate: a.Certificate}, testPassword, ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if data, err := backup(tt.id, tt.password, testRandom(40), cheapKDF); data != nil || !errors.Is(err, tt.want) {
				t.Fatalf("backup = %d bytes, %v; want %v", len(data), err, tt.want)
			}
		})
	}
	if _, err := backup(a, testPassword, testRandom(41), kdfParams{MemoryKiB: 64, Time: 0, Threads: 1}); err == nil {
		t.Errorf("backup with time 0 succeeded")
	}
	if _, err := backup(a, testPassword, bytes.NewReader(nil), cheapKDF); err == nil {
		t.Errorf("backup without randomness succeeded")
	}
}

// TestRestoresAVersion1Backup: a backup written by an earlier release, in
// format version 1 (testdata/backup-v1.tallyid, password testPassword,
// cheap parameters), still restores to the same ID.
func TestRestoresAVersion1Backup(t *testing.T) {
	data, err := os.ReadFile("testdata/backup-v1.tallyid")
	if err != nil {
		t.Fatal(err)
	}
	id, err := Restore(data, testPassword)
	if err != nil {
		t.Fatal(err)
	}
	const want = "C1:CF:D2:9B:F1:6B:83:96:AD:34:30:F5:9D:C3:F5:58:9F:44:87:9E:7D:76:17:DC:35:A2:C2:32:27:7A:D4:A6"
	if got := id.Fingerprint(); got != want {
		t.Fatalf("restored %s, want %s", got, want)
	}
}
