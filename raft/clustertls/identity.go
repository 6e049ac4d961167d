package clustertls

import (
	"crypto/ecdsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/tallyhq/tally/core/atomicfile"
)

// Names of a node's identity files in its directory.
const (
	CAFile      = "ca.pem"
	NodeFile    = "node.pem"
	NodeKeyFile = "node-key.pem"
)

// An Identity is what a node shows and trusts on the cluster network: the
// cluster CA certificate, its own node certificate with its key (Cert.Leaf
// is set), and its node ID. Make one with NewIdentity or LoadIdentity.
type Identity struct {
	CA     *x509.Certificate
	Cert   tls.Certificate
	NodeID string
	// Now is the clock against which peers' certificates are checked.
	// Default time.Now.
	Now func() time.Time
}

// NewIdentity puts together the identity of a node from the CA certificate,
// the node's certificate (both DER, as a member answers a join) and the
// node's key. It refuses, with an error wrapping ErrBadIdentity, a CA that
// is not a cluster CA, a node certificate the CA did not sign or that is
// not shaped as CA.SignNode makes them, and a key that does not belong to
// the node certificate. It does not look at the clock.
func NewIdentity(caDER, certDER []byte, key *ecdsa.PrivateKey) (*Identity, error) {
	ca, err := parseCACert(caDER)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadIdentity, err)
	}
	cert, err := x509.ParseCertificate(certDER)
	if err != nil {
		return nil, fmt.Errorf("%w: node certificate: %w", ErrBadIdentity, err)
	}
	nodeID, err := checkNodeCert(cert, ca)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadIdentity, err)
	}
	if key == nil || !key.PublicKey.Equal(cert.PublicKey) {
		return nil, fmt.Errorf("%w: key does not belong to the certificate of node %q", ErrBadIdentity, nodeID)
	}
	return &Identity{
		CA: ca,
		Cert: tls.Certificate{
			Certificate: [][]byte{cert.Raw},
			PrivateKey:  key,
			Leaf:        cert,
		},
		NodeID: nodeID,
	}, nil
}

// LoadIdentity reads the identity that Save wrote into dir. When a file is
// missing the error wraps fs.ErrNotExist; files that do not hold together
// are refused as NewIdentity refuses them.
func LoadIdentity(dir string) (*Identity, error) {
	var data [3][]byte
	for i, name := range []string{CAFile, NodeFile, NodeKeyFile} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return nil, fmt.Errorf("load node identity: %w", err)
		}
		data[i] = b
	}
	caDER, err := decodePEM(data[0], pemCertificate)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrBadIdentity, CAFile, err)
	}
	certDER, err := decodePEM(data[1], pemCertificate)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrBadIdentity, NodeFile, err)
	}
	key, err := parseKeyPEM(data[2])
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrBadIdentity, NodeKeyFile, err)
	}
	return NewIdentity(caDER, certDER, key)
}

// Save writes the identity into dir (made with mode 0700 if missing) as
// ca.pem, node.pem and node-key.pem (PKCS #8), each with mode 0600 and each
// replaced atomically: written to a temporary file, synced and renamed. The
// key is written first and the CA last; should Save be interrupted while
// replacing an identity, LoadIdentity refuses the mixture rather than use it.
func (id *Identity) Save(dir string) error {
	key, ok := id.Cert.PrivateKey.(*ecdsa.PrivateKey)
	if !ok || id.CA == nil || len(id.Cert.Certificate) == 0 {
		return fmt.Errorf("%w: identity is incomplete", ErrBadIdentity)
	}
	keyPEM, err := marshalKeyPEM(key)
	if err != nil {
		return err
	}
	files := []struct {
		name string
		data []byte
	}{
		{NodeKeyFile, keyPEM},
		{NodeFile, pem.EncodeToMemory(&pem.Block{Type: pemCertificate, Bytes: id.Cert.Certificate[0]})},
		{CAFile, pem.EncodeToMemory(&pem.Block{Type: pemCertificate, Bytes: id.CA.Raw})},
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("save node identity: %w", err)
	}
	for _, f := range files {
		if err := writeFileAtomic(filepath.Join(dir, f.name), f.data); err != nil {
			return fmt.Errorf("save node identity: %w", err)
		}
	}
	return syncDir(dir)
}

// writeFileAtomic replaces path with data, mode 0600 (core/atomicfile).
func writeFileAtomic(path string, data []byte) error { return atomicfile.Write(path, data, 0o600) }

// syncDir makes the renames in dir durable.
func syncDir(dir string) error {
	if err := atomicfile.SyncDir(dir); err != nil {
		return fmt.Errorf("save node identity: %w", err)
	}
	return nil
}

func (id *Identity) now() time.Time {
	if id.Now != nil {
		return id.Now()
	}
	return time.Now()
}
