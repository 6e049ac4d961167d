package sealed

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"testing"
)

var (
	errDamaged = errors.New("damaged")
	errWrong   = errors.New("wrong password")
	testFormat = Format{Magic: "TESTSEAL", MinPlaintext: 1, MaxPlaintext: 4 << 10, What: "test file", Damaged: errDamaged, WrongPassword: errWrong}
	otherFmt   = Format{Magic: "OTHRSEAL", MinPlaintext: 1, MaxPlaintext: 4 << 10, What: "other file", Damaged: errDamaged, WrongPassword: errWrong}
	cheapKDF   = KDF{MemoryKiB: 64, Time: 1, Threads: 1}
	password   = []byte("correct horse battery staple")
)

func testRandom(seed byte) *rand.ChaCha8 {
	var s [32]byte
	s[0] = seed
	return rand.NewChaCha8(s)
}

func TestSealOpen(t *testing.T) {
	plain := []byte(`{"state":"of the world"}`)
	data, err := testFormat.Seal(plain, password, testRandom(1), cheapKDF)
	if err != nil {
		t.Fatal(err)
	}
	if !testFormat.Recognizes(data) || otherFmt.Recognizes(data) || bytes.Contains(data, plain) {
		t.Fatalf("sealed file %q", data)
	}
	got, err := testFormat.Open(data, password)
	if err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("Open = %q, %v", got, err)
	}
	if _, err := testFormat.Open(data, []byte("Correct horse battery staple")); err != errWrong {
		t.Fatalf("wrong password: %v", err)
	}
	// One kind of sealed file is not another.
	if _, err := otherFmt.Open(data, password); !errors.Is(err, errDamaged) {
		t.Fatalf("opened as another format: %v", err)
	}
	for n := range len(data) {
		if _, err := testFormat.Open(data[:n], password); !errors.Is(err, errDamaged) {
			t.Fatalf("the first %d bytes: %v", n, err)
		}
	}
	if again, _ := testFormat.Seal(plain, password, testRandom(2), cheapKDF); bytes.Equal(again, data) {
		t.Fatal("two seals with different randomness are the same")
	}
}

func TestSealRefuses(t *testing.T) {
	for _, tc := range []struct {
		name  string
		plain []byte
		kdf   KDF
	}{
		{"empty plaintext", nil, cheapKDF},
		{"plaintext too long", make([]byte, 4<<10+1), cheapKDF},
		{"time 0", []byte("x"), KDF{MemoryKiB: 64, Time: 0, Threads: 1}},
		{"memory above 1 GiB", []byte("x"), KDF{MemoryKiB: MaxMemoryKiB + 1, Time: 1, Threads: 1}},
	} {
		if data, err := testFormat.Seal(tc.plain, password, testRandom(3), tc.kdf); err == nil {
			t.Errorf("%s: sealed %d bytes", tc.name, len(data))
		}
	}
	if _, err := testFormat.Seal([]byte("x"), password, bytes.NewReader(nil), cheapKDF); err == nil {
		t.Error("sealed without randomness")
	}
}

// FuzzOpen: Open never panics, refuses what Parse refuses with Damaged,
// and otherwise opens or says the password is wrong.
func FuzzOpen(f *testing.F) {
	valid, err := testFormat.Seal([]byte("seed plaintext"), password, testRandom(4), cheapKDF)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(valid, password)
	f.Add(valid, []byte("wrong"))
	f.Add(valid[:HeaderLen], password)
	f.Fuzz(func(t *testing.T, data, pw []byte) {
		file, err := testFormat.Parse(data)
		if err != nil {
			if !errors.Is(err, errDamaged) {
				t.Fatalf("Parse error %v is not Damaged", err)
			}
			if _, err := testFormat.Open(data, pw); !errors.Is(err, errDamaged) {
				t.Fatalf("Parse refused but Open: %v", err)
			}
			return
		}
		if file.KDF.MemoryKiB > 256 || file.KDF.Time > 2 {
			return // too costly for a fuzz iteration
		}
		plain, err := testFormat.Open(data, pw)
		switch {
		case err == nil:
			if len(plain) < testFormat.MinPlaintext || len(plain) > testFormat.MaxPlaintext {
				t.Fatalf("opened %d bytes", len(plain))
			}
		case err != errWrong:
			t.Fatalf("Open: %v", err)
		}
	})
}
