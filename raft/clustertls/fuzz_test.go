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
