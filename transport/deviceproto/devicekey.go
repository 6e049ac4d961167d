package deviceproto

import (
	"crypto"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
)

// Device keys. A device proves who it is with a key of its own: it onboards
// by presenting a first-authentication key together with its public key and
// a signature that shows it holds the private key, and it authenticates
// every later connection by signing the server's challenge. Both signatures
// cover SHA-256 of a context string, the connection's challenge and the
// fingerprint of the server's licensing identity, so a signature is good
// for one purpose, on one connection, towards one server.

// ErrDeviceKey is wrapped when a device key is neither ECDSA P-256 nor
// Ed25519, or cannot be read.
var ErrDeviceKey = errors.New("unsupported device key")

// ChallengeSize is the length of the challenge in a welcome.
const ChallengeSize = 32

// Context strings of the two signatures a device makes.
const (
	OnboardContext = "tally-onboard/1"
	AuthContext    = "tally-auth/1"
)

// OnboardDigest is what a device signs in onboard: SHA-256 of
// OnboardContext, the challenge, and the 32 bytes of the SHA-256 of the
// server's identity certificate (its fingerprint, not the hex text).
func OnboardDigest(challenge, certificate []byte) []byte {
	return challengeDigest(OnboardContext, challenge, certificate)
}

// AuthDigest is what a device signs in authenticate: like OnboardDigest
// with AuthContext.
func AuthDigest(challenge, certificate []byte) []byte {
	return challengeDigest(AuthContext, challenge, certificate)
}

func challengeDigest(context string, challenge, certificate []byte) []byte {
	fp := sha256.Sum256(certificate)
	h := sha256.New()
	h.Write([]byte(context))
	h.Write(challenge)
	h.Write(fp[:])
	return h.Sum(nil)
}

// GenerateDeviceKey makes a new ECDSA P-256 device key.
func GenerateDeviceKey() (crypto.Signer, error) {
	return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
}

// checkDevicePublic accepts an ECDSA P-256 or Ed25519 public key.
func checkDevicePublic(pub crypto.PublicKey) error {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() {
			return fmt.Errorf("%w: ECDSA on %s; use P-256", ErrDeviceKey, k.Curve.Params().Name)
		}
		return nil
	case ed25519.PublicKey:
		if len(k) != ed25519.PublicKeySize {
			return fmt.Errorf("%w: Ed25519 key of %d bytes", ErrDeviceKey, len(k))
		}
		return nil
	}
	return fmt.Errorf("%w: %T; use ECDSA P-256 or Ed25519", ErrDeviceKey, pub)
}

// MarshalDevicePublicKey returns the DER SubjectPublicKeyInfo of a device
// key's public half, as onboard carries it.
func MarshalDevicePublicKey(pub crypto.PublicKey) ([]byte, error) {
	if err := checkDevicePublic(pub); err != nil {
		return nil, err
	}
	return x509.MarshalPKIXPublicKey(pub)
}

// ParseDevicePublicKey reads a DER SubjectPublicKeyInfo and accepts it only
// if it is an ECDSA P-256 or Ed25519 key.
func ParseDevicePublicKey(der []byte) (crypto.PublicKey, error) {
	pub, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		return nil, fmt.Errorf("%w: not a DER SubjectPublicKeyInfo: %w", ErrDeviceKey, err)
	}
	if err := checkDevicePublic(pub); err != nil {
		return nil, err
	}
	return pub, nil
}

// MarshalDeviceKey writes a device key as a PKCS#8 PEM block ("PRIVATE
// KEY").
func MarshalDeviceKey(key crypto.Signer) ([]byte, error) {
	if err := checkDevicePublic(key.Public()); err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrDeviceKey, err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// ParseDeviceKey reads a PKCS#8 PEM device key written by MarshalDeviceKey
// (or by `openssl genpkey`): ECDSA P-256 or Ed25519.
func ParseDeviceKey(data []byte) (crypto.Signer, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, fmt.Errorf("%w: no PEM block", ErrDeviceKey)
	}
	if block.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("%w: PEM block %q, want PRIVATE KEY (PKCS#8)", ErrDeviceKey, block.Type)
	}
	key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrDeviceKey, err)
	}
	var signer crypto.Signer
	switch k := key.(type) {
	case *ecdsa.PrivateKey:
		signer = k
	case ed25519.PrivateKey:
		signer = k
	case *ecdh.PrivateKey:
		return nil, fmt.Errorf("%w: an ECDH key cannot sign", ErrDeviceKey)
	default:
		return nil, fmt.Errorf("%w: %T; use ECDSA P-256 or Ed25519", ErrDeviceKey, key)
	}
	if err := checkDevicePublic(signer.Public()); err != nil {
		return nil, err
	}
	return signer, nil
}

// SignChallenge signs a digest made by OnboardDigest or AuthDigest. An
// ECDSA key signs the digest as the hash (ASN.1 DER signature); an Ed25519
// key signs the 32 digest bytes as its message.
func SignChallenge(key crypto.Signer, random io.Reader, digest []byte) ([]byte, error) {
	if err := checkDevicePublic(key.Public()); err != nil {
		return nil, err
	}
	opts := crypto.SignerOpts(crypto.SHA256)
	if _, ok := key.Public().(ed25519.PublicKey); ok {
		opts = crypto.Hash(0)
	}
	if random == nil {
		random = rand.Reader
	}
	sig, err := key.Sign(random, digest, opts)
	if err != nil {
		return nil, fmt.Errorf("sign the challenge: %w", err)
	}
	return sig, nil
}

// VerifyChallenge checks a device's signature over a digest made by
// OnboardDigest or AuthDigest; an error wraps ErrBadSignature or
// ErrDeviceKey.
func VerifyChallenge(pub crypto.PublicKey, digest, sig []byte) error {
	if err := checkDevicePublic(pub); err != nil {
		return err
	}
	ok := false
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		ok = ecdsa.VerifyASN1(k, digest, sig)
	case ed25519.PublicKey:
		ok = ed25519.Verify(k, digest, sig)
	}
	if !ok {
		return fmt.Errorf("%w: the device signature does not verify", ErrBadSignature)
	}
	return nil
}
