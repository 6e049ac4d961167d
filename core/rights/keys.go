package rights

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"strings"

	"github.com/tallyhq/tally/core/internal/envelope"
)

// Block types of the PEM forms of producer keys.
const (
	privateKeyBlock = "PRIVATE KEY"
	publicKeyBlock  = "PUBLIC KEY"
)

// GenerateKey makes a new producer key on P-256. random is passed to
// crypto/ecdsa, which since Go 1.26 always uses a secure source and ignores
// it unless GODEBUG=cryptocustomrand=1; nil means crypto/rand.
func GenerateKey(random io.Reader) (*ecdsa.PrivateKey, error) {
	if random == nil {
		random = rand.Reader
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), random)
	if err != nil {
		return nil, fmt.Errorf("generate producer key: %w", err)
	}
	return key, nil
}

// MarshalPrivateKey writes a producer key as a PEM "PRIVATE KEY" block
// (PKCS #8).
func MarshalPrivateKey(key *ecdsa.PrivateKey) ([]byte, error) {
	if err := checkCurve(key.PublicKey); err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("encode producer key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: privateKeyBlock, Bytes: der}), nil
}

// ParsePrivateKey reads a producer key written by MarshalPrivateKey (or by
// `openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256`).
func ParsePrivateKey(data []byte) (*ecdsa.PrivateKey, error) {
	der, err := pemBlock(data, privateKeyBlock)
	if err != nil {
		return nil, err
	}
	parsed, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("%w: private key: %w", ErrInvalidKey, err)
	}
	key, ok := parsed.(*ecdsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("%w: private key is %T, want ECDSA P-256", ErrInvalidKey, parsed)
	}
	if err := checkCurve(key.PublicKey); err != nil {
		return nil, err
	}
	return key, nil
}

// MarshalPublicKey writes a producer's public key as a PEM "PUBLIC KEY"
// block (PKIX SubjectPublicKeyInfo).
func MarshalPublicKey(pub *ecdsa.PublicKey) ([]byte, error) {
	if err := checkCurve(*pub); err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("encode public key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: publicKeyBlock, Bytes: der}), nil
}

// ParsePublicKey reads a public key written by MarshalPublicKey.
func ParsePublicKey(data []byte) (*ecdsa.PublicKey, error) {
	der, err := pemBlock(data, publicKeyBlock)
	if err != nil {
		return nil, err
	}
	parsed, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		return nil, fmt.Errorf("%w: public key: %w", ErrInvalidKey, err)
	}
	pub, ok := parsed.(*ecdsa.PublicKey)
	if !ok {
		return nil, fmt.Errorf("%w: public key is %T, want ECDSA P-256", ErrInvalidKey, parsed)
	}
	if err := checkCurve(*pub); err != nil {
		return nil, err
	}
	return pub, nil
}

// KeyFingerprint names a producer key: SHA-256 of its DER
// SubjectPublicKeyInfo as colon-separated upper-case hex pairs. It returns ""
// for a key that cannot be encoded (nil or on no known curve).
func KeyFingerprint(pub *ecdsa.PublicKey) string { return envelope.KeyFingerprint(pub) }

// pemBlock returns the DER bytes of the only PEM block in data, which must
// be of the given type.
func pemBlock(data []byte, blockType string) ([]byte, error) {
	block, rest := pem.Decode(data)
	if block == nil {
		return nil, fmt.Errorf("%w: no PEM %q block", ErrInvalidKey, blockType)
	}
	if block.Type != blockType {
		return nil, fmt.Errorf("%w: PEM block is %q, want %q", ErrInvalidKey, block.Type, blockType)
	}
	if len(strings.TrimSpace(string(rest))) != 0 {
		return nil, fmt.Errorf("%w: data after the PEM %q block", ErrInvalidKey, blockType)
	}
	return block.Bytes, nil
}

// checkCurve refuses keys on curves other than P-256: the file format names
// one algorithm, so a verifier never has to guess.
func checkCurve(pub ecdsa.PublicKey) error {
	if err := envelope.CheckP256(&pub); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidKey, err)
	}
	return nil
}
