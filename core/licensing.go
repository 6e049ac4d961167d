package core

import (
	"bytes"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"fmt"
	"strings"
)

// MainLicensingID is the cluster's licensing ID: the certificate and key
// (PKCS#8 DER) that the back office knows this installation by and that
// sign what devices and the back office are told. Every node makes a local
// ID at first start (package licensingid); the first node's becomes the
// main one and is replicated to every node, so any of them can sign with
// it. Node names the node whose local ID it was.
type MainLicensingID struct {
	Certificate []byte `json:"certificate"`
	Key         []byte `json:"key"`
	Node        string `json:"node"`
}

// Bounds on what a licensing ID may hold.
const (
	maxLicensingCertLen = 8 << 10
	maxLicensingKeyLen  = 4 << 10
)

// SetMainLicensingID makes an ID the main licensing ID. Without Replace it
// only sets one where none is set (every node may propose its own at
// start; the first wins); with Replace, as a restore of a licensing-ID
// backup does, it takes the place of the current one.
type SetMainLicensingID struct {
	ID      MainLicensingID `json:"id"`
	Replace bool            `json:"replace,omitempty"`
}

func (*SetMainLicensingID) Type() string { return "setMainLicensingId" }

func (c *SetMainLicensingID) validate() error {
	return c.ID.validate()
}

// validate checks that the certificate parses and carries the public key
// of the private key.
func (id *MainLicensingID) validate() error {
	if len(id.Certificate) == 0 || len(id.Certificate) > maxLicensingCertLen {
		return fmt.Errorf("%w: licensing ID certificate of %d bytes", ErrInvalidLicensingID, len(id.Certificate))
	}
	if len(id.Key) == 0 || len(id.Key) > maxLicensingKeyLen {
		return fmt.Errorf("%w: licensing ID key of %d bytes", ErrInvalidLicensingID, len(id.Key))
	}
	if len(id.Node) > 64 || strings.ContainsAny(id.Node, "\x00\n") {
		return fmt.Errorf("%w: node name %q", ErrInvalidLicensingID, id.Node)
	}
	cert, err := x509.ParseCertificate(id.Certificate)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidLicensingID, err)
	}
	key, err := x509.ParsePKCS8PrivateKey(id.Key)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidLicensingID, err)
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return fmt.Errorf("%w: the key cannot sign", ErrInvalidLicensingID)
	}
	if eq, ok := signer.Public().(interface{ Equal(crypto.PublicKey) bool }); !ok || !eq.Equal(cert.PublicKey) {
		return fmt.Errorf("%w: the certificate is not for the key", ErrInvalidLicensingID)
	}
	return nil
}

// fingerprint is the SHA-256 of the certificate as colon-separated
// upper-case hex pairs.
func (id *MainLicensingID) fingerprint() string {
	sum := sha256.Sum256(id.Certificate)
	parts := make([]string, len(sum))
	for i, b := range sum {
		parts[i] = fmt.Sprintf("%02X", b)
	}
	return strings.Join(parts, ":")
}

func (s *State) setMainLicensingID(c *SetMainLicensingID) {
	if s.mainID != nil && (!c.Replace || bytes.Equal(s.mainID.Certificate, c.ID.Certificate)) {
		s.noChange = true
		return
	}
	id := MainLicensingID{Certificate: bytes.Clone(c.ID.Certificate), Key: bytes.Clone(c.ID.Key), Node: c.ID.Node}
	s.mainID = &id
}

// MainLicensingID returns a copy of the main licensing ID, and whether one
// is set.
func (s *State) MainLicensingID() (MainLicensingID, bool) {
	if s.mainID == nil {
		return MainLicensingID{}, false
	}
	return MainLicensingID{Certificate: bytes.Clone(s.mainID.Certificate), Key: bytes.Clone(s.mainID.Key), Node: s.mainID.Node}, true
}
