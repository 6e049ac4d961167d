package clustertls

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"io"
	"strconv"
	"strings"
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
// means crypto/rand. The request says level, the highest state level the
// node's release applies (core.Level), as an organizational unit of its
// subject ("state-level N"): an admitting member reads it (CSRLevel) and
// refuses a node whose release is older than the cluster's state, while
// members of releases from before state levels sign the request as ever,
// taking nothing from the subject but the node ID.
func NodeCSR(key *ecdsa.PrivateKey, nodeID string, level int, random io.Reader) ([]byte, error) {
	if random == nil {
		random = rand.Reader
	}
	if err := ValidNodeID(nodeID); err != nil {
		return nil, err
	}
	if !isP256(&key.PublicKey) {
		return nil, fmt.Errorf("node key is not ECDSA P-256")
	}
	if level < 1 || level > maxLevel {
		return nil, fmt.Errorf("state level %d not in 1..%d", level, maxLevel)
	}
	der, err := x509.CreateCertificateRequest(random, &x509.CertificateRequest{
		Subject: pkix.Name{CommonName: nodeID, OrganizationalUnit: []string{levelPrefix + strconv.Itoa(level)}},
	}, key)
	if err != nil {
		return nil, fmt.Errorf("create certificate request: %w", err)
	}
	return der, nil
}

const (
	levelPrefix = "state-level "
	maxLevel    = 1 << 16
)

// CSRLevel returns the state level a certificate request says its node
// applies (NodeCSR): 1 when it says none, as requests of releases from
// before state levels do. A request that cannot be parsed, or says a level
// twice or in another form, is an error wrapping ErrBadCSR.
func CSRLevel(csrDER []byte) (int, error) {
	csr, err := x509.ParseCertificateRequest(csrDER)
	if err != nil {
		return 0, fmt.Errorf("%w: %w", ErrBadCSR, err)
	}
	level := 0
	for _, ou := range csr.Subject.OrganizationalUnit {
		v, ok := strings.CutPrefix(ou, levelPrefix)
		if !ok {
			continue
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxLevel || strconv.Itoa(n) != v || level != 0 {
			return 0, fmt.Errorf("%w: state level %q", ErrBadCSR, ou)
		}
		level = n
	}
	return max(level, 1), nil
}
