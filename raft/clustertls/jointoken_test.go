package clustertls

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"testing/iotest"
)

// kat is a token with a known secret (bytes 0 to 31) and the values its
// verifier and proofs must have on every version that speaks
// "tally-join-*/1"; computed independently with Python's hmac module.
var kat = struct {
	token, verifier, requestProof, responseProof string
}{
	token:         "tly1.0123456789abcdef.AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8",
	verifier:      "672db4347a4d956e6f10c2d6393f7ae0367c6f9995d9698be3452887225d8b72",
	requestProof:  "d11ea3a2d6a7fb008e68ac565655f817577d81dfbf1b311efdf33afe535787e0",
	responseProof: "653a84617c8a167d62b5bcbcd66332d9bd7fa8cdd4fb52f4c51edc34f420d98a",
}

func TestJoinTokenKnownAnswers(t *testing.T) {
	tok, err := ParseJoinToken(kat.token)
	if err != nil {
		t.Fatal(err)
	}
	if tok.ID != "0123456789abcdef" || !bytes.Equal(tok.Secret, seq(32)) {
		t.Fatalf("parsed %q, %x", tok.ID, tok.Secret)
	}
	v := tok.Verifier()
	if got := hex.EncodeToString(v); got != kat.verifier {
		t.Errorf("verifier %s, want %s", got, kat.verifier)
	}
	if got := hex.EncodeToString(JoinProof(v, JoinRequestContext, []byte("hello"))); got != kat.requestProof {
		t.Errorf("request proof %s, want %s", got, kat.requestProof)
	}
	if got := hex.EncodeToString(JoinProof(v, JoinResponseContext, []byte("hello"))); got != kat.responseProof {
		t.Errorf("response proof %s, want %s", got, kat.responseProof)
	}
}

func seq(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i)
	}
	return b
}

func TestNewJoinToken(t *testing.T) {
	tok, err := NewJoinToken(bytes.NewReader(seq(40)))
	if err != nil {
		t.Fatal(err)
	}
	if tok.ID != "0001020304050607" || !bytes.Equal(tok.Secret, seq(40)[8:]) {
		t.Errorf("token from a known source: %q, %x", tok.ID, tok.Secret)
	}
	s := tok.String()
	if !strings.HasPrefix(s, "tly1.0001020304050607.") || len(s) != 65 {
		t.Errorf("String() = %q", s)
	}
	back, err := ParseJoinToken(s)
	if err != nil {
		t.Fatal(err)
	}
	if back.ID != tok.ID || !bytes.Equal(back.Secret, tok.Secret) {
		t.Error("parse does not give back the token")
	}
	a, err := NewJoinToken(nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewJoinToken(nil)
	if err != nil {
		t.Fatal(err)
	}
	if a.ID == b.ID || bytes.Equal(a.Secret, b.Secret) {
		t.Error("two random tokens are alike")
	}
	if _, err := NewJoinToken(iotest.ErrReader(errors.New("no entropy"))); err == nil {
		t.Error("NewJoinToken with a failing random source succeeded")
	}
	if _, err := NewJoinToken(bytes.NewReader(seq(39))); err == nil {
		t.Error("NewJoinToken with too few random bytes succeeded")
	}
}

func TestParseJoinTokenRefuses(t *testing.T) {
	secret := kat.token[len("tly1.0123456789abcdef."):]
	tests := []struct{ name, s string }{
		{"empty", ""},
		{"prefix only", "tly1."},
		{"other version", "tly2.0123456789abcdef." + secret},
		{"upper-case prefix", "TLY1.0123456789abcdef." + secret},
		{"upper-case ID", "tly1.0123456789ABCDEF." + secret},
		{"short ID", "tly1.0123456789abcde." + secret + "A"},
		{"long ID", "tly1.0123456789abcdef0." + secret[1:]},
		{"non-hex ID", "tly1.0123456789abcdeg." + secret},
		{"padded secret", "tly1.0123456789abcdef." + secret + "="},
		{"standard base64", "tly1.0123456789abcdef." + strings.Replace(secret, "A", "+", 1)},
		{"short secret", "tly1.0123456789abcdef." + secret[:42]},
		{"long secret", "tly1.0123456789abcdef." + secret + "A"},
		// "8" and "9" differ only in the bits past the 32nd byte.
		{"non-canonical secret", "tly1.0123456789abcdef." + secret[:42] + "9"},
		{"line break in secret", "tly1.0123456789abcdef." + secret[:20] + "\n" + secret[21:]},
		{"space", " " + kat.token[1:]},
		{"dot instead of secret character", "tly1.0123456789abcdef." + secret[:42] + "."},
		{"missing dot", "tly1.0123456789abcdefA" + secret},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseJoinToken(tt.s)
			if !errors.Is(err, ErrBadToken) {
				t.Fatalf("ParseJoinToken(%q) = %v, want ErrBadToken", tt.s, err)
			}
			if strings.Contains(err.Error(), secret[:20]) {
				t.Errorf("error repeats the secret: %v", err)
			}
		})
	}
}

func TestJoinProof(t *testing.T) {
	tok, err := NewJoinToken(nil)
	if err != nil {
		t.Fatal(err)
	}
	other, err := NewJoinToken(nil)
	if err != nil {
		t.Fatal(err)
	}
	body := []byte(`{"node":"node-2","csr":"..."}`)
	proof := JoinProof(tok.Verifier(), JoinRequestContext, body)
	short := proof[:len(proof)-1]

	tests := []struct {
		name     string
		verifier []byte
		context  string
		body     []byte
		proof    []byte
		want     bool
	}{
		{"same verifier, context and body", tok.Verifier(), JoinRequestContext, body, proof, true},
		{"answer context", tok.Verifier(), JoinResponseContext, body, proof, false},
		{"other body", tok.Verifier(), JoinRequestContext, append(body, ' '), proof, false},
		{"empty body", tok.Verifier(), JoinRequestContext, nil, proof, false},
		{"other token", other.Verifier(), JoinRequestContext, body, proof, false},
		{"secret used as verifier", tok.Secret, JoinRequestContext, body, proof, false},
		{"unknown token", nil, JoinRequestContext, body, proof, false},
		{"truncated proof", tok.Verifier(), JoinRequestContext, body, short, false},
		{"no proof", tok.Verifier(), JoinRequestContext, body, nil, false},
		{"context with a zero byte", tok.Verifier(), JoinRequestContext + "\x00", body, proof, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := CheckJoinProof(tt.verifier, tt.context, tt.body, tt.proof); got != tt.want {
				t.Errorf("CheckJoinProof = %v, want %v", got, tt.want)
			}
		})
	}
	// A cluster that finds no verifier for a token ID must not end up
	// checking against an empty key, which anyone can use.
	m := hmac.New(sha256.New, nil)
	m.Write([]byte(JoinRequestContext + "\x00"))
	m.Write(body)
	if CheckJoinProof(nil, JoinRequestContext, body, m.Sum(nil)) {
		t.Error("a proof keyed with an empty verifier checks")
	}
}

func TestJoinProofPanicsOnMisuse(t *testing.T) {
	v := make([]byte, VerifierSize)
	for name, f := range map[string]func(){
		"short verifier":         func() { JoinProof(v[1:], JoinRequestContext, nil) },
		"context with zero byte": func() { JoinProof(v, "a\x00b", nil) },
	} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Error("no panic")
				}
			}()
			f()
		})
	}
}

func TestJoinTokenLogsIDOnly(t *testing.T) {
	tok, err := ParseJoinToken(kat.token)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	slog.New(slog.NewTextHandler(&buf, nil)).Info("join", "token", tok)
	if out := buf.String(); !strings.Contains(out, "token.id=0123456789abcdef") || strings.Contains(out, "AAECAwQF") {
		t.Errorf("log line %q, want the ID and not the secret", out)
	}
}
