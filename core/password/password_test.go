package password

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"regexp"
	"runtime"
	"runtime/metrics"
	"strings"
	"testing"
)

// cheapParams keeps the key derivation in tests fast; Hash itself always
// uses defaultParams.
func cheapParams() params {
	return params{memoryKiB: 64, time: 1, threads: 1, saltLen: 16, keyLen: 32}
}

func testRandom(seed byte) *rand.ChaCha8 {
	var s [32]byte
	s[0] = seed
	return rand.NewChaCha8(s)
}

func TestHashFormat(t *testing.T) {
	h, err := Hash("correct horse battery staple", testRandom(1))
	if err != nil {
		t.Fatalf("Hash: %v", err)
	}
	form := regexp.MustCompile(`^\$argon2id\$v=19\$m=19456,t=2,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$`)
	if !form.MatchString(h) {
		t.Fatalf("Hash = %q, want the form %s", h, form)
	}
	ok, err := Verify(h, "correct horse battery staple")
	if err != nil || !ok {
		t.Errorf("Verify(Hash(p), p) = %v, %v; want true", ok, err)
	}
	ok, err = Verify(h, "correct horse battery stapler")
	if err != nil || ok {
		t.Errorf("Verify(Hash(p), other) = %v, %v; want false", ok, err)
	}
}

// TestKnownHash pins Verify to a hash made by another argon2id
// implementation: the reference C library (libargon2), through
// argon2id_hash_encoded(t=2, m=256, p=2, "password", "somesaltsomesalt", 32).
func TestKnownHash(t *testing.T) {
	const known = "$argon2id$v=19$m=256,t=2,p=2$c29tZXNhbHRzb21lc2FsdA$wRLS7mudUUQT+AYkMYeVIYbo8Zysq4DyCoI9VJ8RHSw"
	ok, err := Verify(known, "password")
	if err != nil || !ok {
		t.Errorf("Verify(known, password) = %v, %v; want true", ok, err)
	}
	ok, err = Verify(known, "passwore")
	if err != nil || ok {
		t.Errorf("Verify(known, passwore) = %v, %v; want false", ok, err)
	}
}

func TestHashRoundTrip(t *testing.T) {
	passwords := []string{"", "x", "correct horse battery staple", "пароль-🔑", strings.Repeat("a", MaxLength), "tab\tand\x00nul"}
	for i, pw := range passwords {
		h, err := hash(pw, testRandom(byte(i)), cheapParams())
		if err != nil {
			t.Fatalf("hash(%q): %v", pw, err)
		}
		for j, other := range passwords {
			ok, err := Verify(h, other)
			if err != nil || ok != (i == j) {
				t.Errorf("Verify(hash(%q), %q) = %v, %v; want %v", pw, other, ok, err, i == j)
			}
		}
	}
	a, _ := hash("same", testRandom(10), cheapParams())
	b, _ := hash("same", testRandom(11), cheapParams())
	if a == b {
		t.Errorf("two hashes of one password with different salts are equal: %s", a)
	}
}

func TestHashNeedsRandomness(t *testing.T) {
	if _, err := Hash("correct horse", bytes.NewReader(make([]byte, 4))); err == nil {
		t.Error("Hash with 4 bytes of randomness succeeded")
	}
	if _, err := Hash("correct horse", nil); err == nil {
		t.Error("Hash with no randomness succeeded")
	}
}

func TestVerifyMalformed(t *testing.T) {
	good, err := hash("pw", testRandom(20), cheapParams())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := parsePHC(good); err != nil {
		t.Fatalf("parsePHC(%q): %v", good, err)
	}
	salt := "c29tZXNhbHRzb21lc2FsdA"                     // 16 bytes
	key := "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA" // 32 bytes
	with := func(params string) string { return "$argon2id$v=19$" + params + "$" + salt + "$" + key }
	tests := []string{
		"",
		"password",
		"$argon2id$",
		strings.Replace(good, "argon2id", "argon2i", 1),
		strings.Replace(good, "argon2id", "ARGON2ID", 1),
		strings.Replace(good, "v=19", "v=16", 1),
		strings.Replace(good, "v=19", "v=019", 1),
		strings.Replace(good, "$v=19", "", 1),
		good + "$",
		"x" + good,
		with("m=65536,t=3"),
		with("m=65536,t=3,p=2,k=1"),
		with("t=3,m=65536,p=2"),
		with("m=065536,t=3,p=2"),
		with("m=+65536,t=3,p=2"),
		with("m=65536,t=3,p= 2"),
		with("m=1048577,t=3,p=2"),    // above 1 GiB
		with("m=4294967296,t=3,p=2"), // overflows 32 bits
		with("m=15,t=3,p=2"),         // below 8 KiB a lane
		with("m=65536,t=0,p=2"),
		with("m=65536,t=17,p=2"),
		with("m=65536,t=3,p=0"),
		with("m=65536,t=3,p=17"),
		with("m=65536,t=3,p=256"),
		"$argon2id$v=19$m=64,t=1,p=1$c29tZXNhbA$" + key, // 7-byte salt
		"$argon2id$v=19$m=64,t=1,p=1$" + salt + "$" + strings.Repeat("A", 20), // 15-byte hash
		"$argon2id$v=19$m=64,t=1,p=1$" + salt + "=$" + key,                    // padding
		"$argon2id$v=19$m=64,t=1,p=1$" + salt + "\n$" + key,                   // line break
		"$argon2id$v=19$m=64,t=1,p=1$" + salt + "$" + key[:len(key)-1] + "B",  // stray bits
		"$argon2id$v=19$m=64,t=1,p=1$" + salt + "$" + strings.ReplaceAll(key, "A", "-"),
		"$argon2id$v=19$m=64,t=1,p=1$" + salt + "$" + strings.Repeat("A", 300),
	}
	for _, h := range tests {
		if _, err := parsePHC(h); !errors.Is(err, ErrMalformedHash) {
			t.Errorf("parsePHC(%q) = %v, want ErrMalformedHash", h, err)
			continue
		}
		if ok, err := Verify(h, "pw"); ok || !errors.Is(err, ErrMalformedHash) {
			t.Errorf("Verify(%q) = %v, %v; want ErrMalformedHash", h, ok, err)
		}
	}
}

func TestVerifyAcceptsOtherParameters(t *testing.T) {
	for _, p := range []params{
		{memoryKiB: 8, time: 1, threads: 1, saltLen: 8, keyLen: 16},
		{memoryKiB: 128, time: 16, threads: 16, saltLen: 64, keyLen: 64},
	} {
		h, err := hash("pw", testRandom(30), p)
		if err != nil {
			t.Fatalf("hash with %+v: %v", p, err)
		}
		if ok, err := Verify(h, "pw"); err != nil || !ok {
			t.Errorf("Verify(%q) = %v, %v; want true", h, ok, err)
		}
	}
}

func TestCheck(t *testing.T) {
	tests := []struct {
		password string
		ok       bool
	}{
		{"", false},
		{"1234567", false},
		{"12345678", true},
		{"        ", false},
		{" \t\n\r\v\f  ", false},
		{"\u00a0\u2003\u3000", false}, // non-breaking, em and ideographic spaces: 8 bytes of white space
		{"  pass  ", true},
		{"pässwörd", true},
		{strings.Repeat("x", MaxLength), true},
		{strings.Repeat("x", MaxLength+1), false},
		{"🔑🔑", true}, // 8 bytes
	}
	for _, tt := range tests {
		err := Check(tt.password)
		if tt.ok && err != nil {
			t.Errorf("Check(%q) = %v, want nil", tt.password, err)
		}
		if !tt.ok && !errors.Is(err, ErrWeakPassword) {
			t.Errorf("Check(%q) = %v, want ErrWeakPassword", tt.password, err)
		}
	}
}

// TestDerivationGivesMemoryBackBesideASmallHeap: hashing forces a
// collection that returns its memory when the live heap is small, and
// leaves it to the collector's pacing beside a large one.
func TestDerivationGivesMemoryBackBesideASmallHeap(t *testing.T) {
	hash, err := Hash("correct horse", testRandom(9))
	if err != nil {
		t.Fatal(err)
	}
	forced := func() uint64 {
		s := []metrics.Sample{{Name: "/gc/cycles/forced:gc-cycles"}}
		metrics.Read(s)
		return s[0].Value.Uint64()
	}
	runtime.GC()
	before := forced()
	if ok, err := Verify(hash, "correct horse"); !ok || err != nil {
		t.Fatal(ok, err)
	}
	if forced() == before {
		t.Fatal("no collection forced after a derivation beside a small heap")
	}

	big := make([][]byte, 160) // 160 MiB live, over 4 times the derivation's memory
	for i := range big {
		big[i] = make([]byte, 1<<20)
		big[i][0] = 1
	}
	runtime.GC()
	before = forced()
	if ok, err := Verify(hash, "correct horse"); !ok || err != nil {
		t.Fatal(ok, err)
	}
	if n := forced() - before; n != 0 {
		t.Fatalf("%d collections forced beside a heap of 160 MiB", n)
	}
	runtime.KeepAlive(big)
}
