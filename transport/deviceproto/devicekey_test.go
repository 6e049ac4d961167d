package deviceproto

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"testing"
)

// TestChallengeDigestVectors pins the signing input that PROTOCOL.md
// describes, for implementers in other languages.
func TestChallengeDigestVectors(t *testing.T) {
	challenge := make([]byte, 32)
	for i := range challenge {
		challenge[i] = byte(i)
	}
	cert := []byte("example certificate")
	for _, tc := range []struct {
		name string
		got  []byte
		want string
	}{
		{"onboard", OnboardDigest(challenge, cert), "53f9449d732ae5d044aa1dc96eeec5af753d93c1d034949a9b195a28dfd42090"},
		{"auth", AuthDigest(challenge, cert), "49764d61e0acbc5f4bdb42b8b00f65eef94e16926a8d28ca5561e53c90882978"},
	} {
		if hex.EncodeToString(tc.got) != tc.want {
			t.Errorf("%s digest %x, want %s", tc.name, tc.got, tc.want)
		}
	}
}

func TestDeviceKeys(t *testing.T) {
	ecKey, err := GenerateDeviceKey()
	if err != nil {
		t.Fatal(err)
	}
	_, edKey, _ := ed25519.GenerateKey(rand.Reader)
	digest := AuthDigest(make([]byte, 32), []byte("cert"))
	for name, key := range map[string]crypto.Signer{"ecdsa": ecKey, "ed25519": edKey} {
		pemData, err := MarshalDeviceKey(key)
		if err != nil {
			t.Fatal(err)
		}
		back, err := ParseDeviceKey(pemData)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		der, err := MarshalDevicePublicKey(back.Public())
		if err != nil {
			t.Fatal(err)
		}
		pub, err := ParseDevicePublicKey(der)
		if err != nil {
			t.Fatal(err)
		}
		sig, err := SignChallenge(back, nil, digest)
		if err != nil {
			t.Fatal(err)
		}
		if err := VerifyChallenge(pub, digest, sig); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if err := VerifyChallenge(pub, OnboardDigest(make([]byte, 32), []byte("cert")), sig); !errors.Is(err, ErrBadSignature) {
			t.Fatalf("%s: an auth signature passed for onboard: %v", name, err)
		}
	}

	// Other keys are refused with ErrDeviceKey.
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 1024)
	for name, key := range map[string]crypto.Signer{"p384": p384, "rsa": rsaKey} {
		if _, err := MarshalDeviceKey(key); !errors.Is(err, ErrDeviceKey) {
			t.Errorf("%s marshalled: %v", name, err)
		}
		der, _ := x509.MarshalPKIXPublicKey(key.Public())
		if _, err := ParseDevicePublicKey(der); !errors.Is(err, ErrDeviceKey) {
			t.Errorf("%s public key accepted: %v", name, err)
		}
		p8, _ := x509.MarshalPKCS8PrivateKey(key)
		if _, err := ParseDeviceKey(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: p8})); !errors.Is(err, ErrDeviceKey) {
			t.Errorf("%s private key accepted: %v", name, err)
		}
	}
	for name, data := range map[string][]byte{
		"empty":     nil,
		"not pem":   []byte("hello"),
		"sec1":      pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: []byte{1}}),
		"truncated": pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte{0x30, 0x82}}),
	} {
		if _, err := ParseDeviceKey(data); !errors.Is(err, ErrDeviceKey) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := ParseDevicePublicKey([]byte("junk")); !errors.Is(err, ErrDeviceKey) {
		t.Errorf("junk public key: %v", err)
	}
}
