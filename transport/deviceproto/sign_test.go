package deviceproto

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"fmt"
	"testing"
)

func TestSignBatchEverySize(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	for n := 1; n <= 33; n++ {
		payloads := make([][]byte, n)
		for i := range payloads {
			payloads[i] = []byte(fmt.Sprintf(`{"n":%d,"i":%d}`, n, i))
		}
		signed, err := SignBatch(key, rand.Reader, payloads)
		if err != nil {
			t.Fatal(err)
		}
		for i, s := range signed {
			if err := Verify(&key.PublicKey, s); err != nil {
				t.Fatalf("size %d leaf %d: %v", n, i, err)
			}
			if (s.Proof == nil) != (n == 1) {
				t.Fatalf("size %d: proof %v", n, s.Proof)
			}
			tampered := s
			tampered.Payload = append([]byte(nil), s.Payload...)
			tampered.Payload[1] ^= 1
			if err := Verify(&key.PublicKey, tampered); !errors.Is(err, ErrBadSignature) {
				t.Fatalf("size %d leaf %d: tampered payload verified: %v", n, i, err)
			}
			if n > 1 {
				moved := s
				moved.Proof = &Proof{Index: (i + 1) % n, Size: n, Path: s.Proof.Path}
				if err := Verify(&key.PublicKey, moved); !errors.Is(err, ErrBadSignature) {
					t.Fatalf("size %d leaf %d: proof for another index verified", n, i)
				}
			}
		}
	}
}

func TestVerifyRejectsMalformedProofs(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signed, err := SignBatch(key, rand.Reader, [][]byte{[]byte("a"), []byte("b"), []byte("c")})
	if err != nil {
		t.Fatal(err)
	}
	s := signed[0] // path: b, then c
	for name, p := range map[string]*Proof{
		"index past size": {Index: 3, Size: 3, Path: s.Proof.Path},
		"negative index":  {Index: -1, Size: 3, Path: s.Proof.Path},
		"short path":      {Index: 0, Size: 3, Path: s.Proof.Path[:1]},
		"long path":       {Index: 0, Size: 3, Path: append(s.Proof.Path, s.Proof.Path[0])},
		"short sibling":   {Index: 0, Size: 3, Path: [][]byte{{1, 2}, s.Proof.Path[1]}},
		"size one":        {Index: 0, Size: 1},
	} {
		bad := s
		bad.Proof = p
		if err := Verify(&key.PublicKey, bad); !errors.Is(err, ErrBadSignature) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestNormalizeFingerprint(t *testing.T) {
	want := "AB:CD:01"
	for _, in := range []string{"AB:CD:01", "ab:cd:01", "abcd01", " ABCD01 "} {
		if got := NormalizeFingerprint(in); got != want {
			t.Errorf("NormalizeFingerprint(%q) = %q", in, got)
		}
	}
}
