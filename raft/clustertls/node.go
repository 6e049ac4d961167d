package clustertls

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"io"
)

// maxNodeID is the longest node ID.
const maxNodeID = 64

// ValidNodeID returns nil when nodeID is 1 to 64 characters of
// [A-Za-z0-9._-], and otherwise an error wrapping ErrBadNodeID.
func ValidNodeID(nodeID string) error {
	if nodeID == "" || len(nodeID) > maxNodeID {
		return fmt.Errorf("%w: %q is not 1 to %d characters", ErrBadNodeID, nodeID, maxNodeID)
	}
	for i := 0; i < len(nodeID); i++ {
		c := nodeID[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '.', c == '_', c == '-':
		default:
			return fmt.Errorf("%w: %q has a character other than A-Z, a-z, 0-9, '.', '_' and '-'", ErrBadNodeID, nodeID)
		}
	}
	return nil
}

// NewNodeKey makes a node's ECDSA P-256 key. nil random means crypto/rand.
func NewNodeKey(random io.Reader) (*ecdsa.PrivateKey, error) {
	if random == nil {
		random = rand.Reader
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), random)
	if err != nil {
		return nil, fmt.Errorf("generate node key: %w", err)
	}
	return key, nil
}

// NodeCSR returns the certificate request (DER) with which node nodeID asks
// for its certificate: the common name is nodeID, signed by key. nil random
// means crypto/rand.
func NodeCSR(key *ecdsa.PrivateKey, nodeID string, random io.Reader) ([]byte, error) {
	if random == nil {
		random = rand.Reader
	}
	if err := ValidNodeID(nodeID); err != nil {
		return nil, err
	}
	if !isP256(&key.PublicKey) {
		return nil, fmt.Errorf("node key is not ECDSA P-256")
	}
	der, err := x509.CreateCertificateRequest(random, &x509.CertificateRequest{
		Subject: pkix.Name{CommonName: nodeID},
	}, key)
	if err != nil {
		return nil, fmt.Errorf("create certificate request: %w", err)
	}
	return der, nil
}
