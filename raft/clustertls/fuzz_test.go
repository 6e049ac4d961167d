package clustertls

import (
	"errors"
	"testing"
)

// FuzzParseJoinToken holds ParseJoinToken to its promise: it refuses with
// ErrBadToken, or accepts exactly what String writes back.
func FuzzParseJoinToken(f *testing.F) {
	f.Add(kat.token)
	f.Fuzz(func(t *testing.T, s string) {
		tok, err := ParseJoinToken(s)
		if err != nil {
			if !errors.Is(err, ErrBadToken) {
				t.Fatalf("ParseJoinToken(%q) = %v, not ErrBadToken", s, err)
			}
			return
		}
		if got := tok.String(); got != s {
			t.Fatalf("ParseJoinToken(%q).String() = %q", s, got)
		}
		if len(tok.ID) != 16 || len(tok.Secret) != 32 || len(tok.Verifier()) != VerifierSize {
			t.Fatalf("ParseJoinToken(%q) = ID %q, %d-byte secret", s, tok.ID, len(tok.Secret))
		}
	})
}

// FuzzCSRLevel: CSRLevel refuses with ErrBadCSR or returns a level in
// range; seeded with requests of levels 1 and 2 and of no level.
func FuzzCSRLevel(f *testing.F) {
	key, err := NewNodeKey(nil)
	if err != nil {
		f.Fatal(err)
	}
	for _, level := range []int{1, 2} {
		csr, err := NodeCSR(key, "n1", level, nil)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(csr)
	}
	f.Fuzz(func(t *testing.T, der []byte) {
		level, err := CSRLevel(der)
		if err != nil {
			if !errors.Is(err, ErrBadCSR) {
				t.Fatalf("CSRLevel: %v, not ErrBadCSR", err)
			}
			return
		}
		if level < 1 || level > maxLevel {
			t.Fatalf("CSRLevel = %d", level)
		}
	})
}
