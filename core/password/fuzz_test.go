package password

import (
	"errors"
	"testing"
)

// The fuzz target runs the key derivation only for hashes at most this
// costly, so that an iteration stays fast; everything else it checks through
// parsePHC, which Verify runs first.
const (
	fuzzMaxMemoryKiB = 256
	fuzzMaxTime      = 2
)

// FuzzVerify feeds arbitrary hash strings and passwords to Verify. Verify
// must not panic, must refuse whatever parsePHC refuses with
// ErrMalformedHash, and whatever parsePHC accepts must be in the canonical
// form it writes back. A password hashed with cheap parameters must verify.
func FuzzVerify(f *testing.F) {
	f.Add("$argon2id$v=19$m=256,t=2,p=2$c29tZXNhbHRzb21lc2FsdA$wRLS7mudUUQT+AYkMYeVIYbo8Zysq4DyCoI9VJ8RHSw", "password")
	f.Add("$argon2id$v=19$m=65536,t=3,p=2$c29tZXNhbHRzb21lc2FsdA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "pw")
	f.Add("$argon2id$v=19$m=64,t=1,p=1$c29tZXNhbHRzb21lc2FsdA\n$wRLS7mudUUQT+AYkMYeVIYbo8Zysq4DyCoI9VJ8RHSw", "")

	f.Fuzz(func(t *testing.T, hashString, password string) {
		h, err := parsePHC(hashString)
		if err != nil {
			if !errors.Is(err, ErrMalformedHash) {
				t.Fatalf("parsePHC error %v does not wrap ErrMalformedHash", err)
			}
			if ok, err := Verify(hashString, password); ok || !errors.Is(err, ErrMalformedHash) {
				t.Fatalf("parsePHC refused the hash but Verify = %v, %v", ok, err)
			}
		} else {
			if h.String() != hashString {
				t.Fatalf("parsePHC accepted %q, which is not its canonical form %q", hashString, h.String())
			}
			if h.memoryKiB <= fuzzMaxMemoryKiB && h.time <= fuzzMaxTime {
				if _, err := Verify(hashString, password); err != nil {
					t.Fatalf("Verify of a hash parsePHC accepted: %v", err)
				}
			}
		}

		own, err := hash(password, testRandom(1), cheapParams())
		if err != nil {
			t.Fatalf("hash: %v", err)
		}
		if ok, err := Verify(own, password); !ok || err != nil {
			t.Fatalf("Verify(hash(%q)) = %v, %v; want true", password, ok, err)
		}
	})
}
