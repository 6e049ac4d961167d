package clustertls

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"slices"
	"time"
	"unicode"
	"unicode/utf8"
)

// Validity of the certificates this package issues. Both start an hour
// before now so that a peer whose clock is a little behind accepts them.
const (
	caYears    = 30
	nodeYears  = 10
	backdating = time.Hour
	// caNamePrefix begins the CA's common name; the cluster name follows.
	caNamePrefix = "Tally cluster CA "
	// maxClusterName keeps the CA's common name within the 64 characters
	// X.509 allows.
	maxClusterName = 64 - len(caNamePrefix)
	// nodeDNSSuffix follows the node ID in a node certificate's DNS name.
	nodeDNSSuffix = ".node.tally"
)

// PEM block types written and read.
const (
	pemCertificate = "CERTIFICATE"
	pemPKCS8Key    = "PRIVATE KEY"
	pemSEC1Key     = "EC PRIVATE KEY"
)

// A CA is a cluster CA: the root every member trusts and the key that signs
// node certificates. CertDER is Cert.Raw.
type CA struct {
	Cert    *x509.Certificate
	CertDER []byte
	Key     *ecdsa.PrivateKey
}

// NewCA makes the CA of the cluster named cluster (1 to 47 printable
// characters): an ECDSA P-256 key and a self-signed certificate with the
// common name "Tally cluster CA <cluster>", valid from an hour before now
// for 30 years, that may sign end-entity certificates only. random is the
// source of the key and the 128-bit serial number; nil means crypto/rand.
func NewCA(cluster string, now time.Time, random io.Reader) (*CA, error) {
	if random == nil {
		random = rand.Reader
	}
	if err := validClusterName(cluster); err != nil {
		return nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), random)
	if err != nil {
		return nil, fmt.Errorf("generate CA key: %w", err)
	}
	serial, err := randomSerial(random)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: caNamePrefix + cluster},
		NotBefore:             now.Add(-backdating),
		NotAfter:              now.AddDate(caYears, 0, 0),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLen:            0,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(random, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("create CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("parse new CA certificate: %w", err)
	}
	return &CA{Cert: cert, CertDER: der, Key: key}, nil
}

func validClusterName(cluster string) error {
	if cluster == "" || len(cluster) > maxClusterName || !utf8.ValidString(cluster) {
		return fmt.Errorf("%w: cluster name %q is not 1 to %d bytes of UTF-8", ErrBadCA, cluster, maxClusterName)
	}
	for _, r := range cluster {
		if !unicode.IsPrint(r) {
			return fmt.Errorf("%w: cluster name %q has an unprintable character", ErrBadCA, cluster)
		}
	}
	return nil
}

// randomSerial reads a positive 128-bit serial number.
func randomSerial(random io.Reader) (*big.Int, error) {
	var b [16]byte
	if _, err := io.ReadFull(random, b[:]); err != nil {
		return nil, fmt.Errorf("read serial number: %w", err)
	}
	serial := new(big.Int).SetBytes(b[:])
	if serial.Sign() == 0 {
		return nil, fmt.Errorf("read serial number: random source gives only zeros")
	}
	return serial, nil
}

// MarshalPEM returns the CA certificate and, as PKCS #8, its key.
func (ca *CA) MarshalPEM() (certPEM, keyPEM []byte, err error) {
	keyPEM, err = marshalKeyPEM(ca.Key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: pemCertificate, Bytes: ca.CertDER}), keyPEM, nil
}

// ParseCA reads a CA written by MarshalPEM (the key may also be in SEC 1
// form, "EC PRIVATE KEY"). It refuses, with an error wrapping ErrBadCA,
// anything but a single PEM block in each, a certificate that is not a
// self-signed CA allowed to sign certificates, a key other than P-256, and a
// key that does not belong to the certificate.
func ParseCA(certPEM, keyPEM []byte) (*CA, error) {
	der, err := decodePEM(certPEM, pemCertificate)
	if err != nil {
		return nil, fmt.Errorf("%w: certificate: %w", ErrBadCA, err)
	}
	cert, err := parseCACert(der)
	if err != nil {
		return nil, err
	}
	key, err := parseKeyPEM(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("%w: key: %w", ErrBadCA, err)
	}
	if !key.PublicKey.Equal(cert.PublicKey) {
		return nil, fmt.Errorf("%w: key does not belong to certificate %q", ErrBadCA, cert.Subject.CommonName)
	}
	return &CA{Cert: cert, CertDER: cert.Raw, Key: key}, nil
}

// parseCACert parses and checks a cluster CA certificate.
func parseCACert(der []byte) (*x509.Certificate, error) {
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadCA, err)
	}
	name := cert.Subject.CommonName
	if !cert.BasicConstraintsValid || !cert.IsCA {
		return nil, fmt.Errorf("%w: certificate %q is not a CA", ErrBadCA, name)
	}
	if cert.KeyUsage&x509.KeyUsageCertSign == 0 {
		return nil, fmt.Errorf("%w: certificate %q may not sign certificates", ErrBadCA, name)
	}
	if !isP256(cert.PublicKey) {
		return nil, fmt.Errorf("%w: certificate %q has no ECDSA P-256 key", ErrBadCA, name)
	}
	if err := cert.CheckSignatureFrom(cert); err != nil {
		return nil, fmt.Errorf("%w: certificate %q is not self-signed: %w", ErrBadCA, name, err)
	}
	return cert, nil
}

// SignNode issues the certificate of node nodeID for the key in the
// certificate request csrDER (DER, as NodeCSR makes it). The request must be
// signed by its key, a P-256 key, and name nodeID as its common name; of the
// request only the key is used. The certificate names nodeID as its common
// name and "<nodeID>.node.tally" as its DNS name, may be used for server and
// client authentication, and is valid from an hour before now for ten years
// but not past the CA. Refusals wrap ErrBadCSR.
func (ca *CA) SignNode(csrDER []byte, nodeID string, now time.Time, random io.Reader) (certDER []byte, err error) {
	if random == nil {
		random = rand.Reader
	}
	if err := ValidNodeID(nodeID); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadCSR, err)
	}
	csr, err := x509.ParseCertificateRequest(csrDER)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadCSR, err)
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadCSR, err)
	}
	if csr.Subject.CommonName != nodeID {
		return nil, fmt.Errorf("%w: request names node %q, not %q", ErrBadCSR, csr.Subject.CommonName, nodeID)
	}
	if !isP256(csr.PublicKey) {
		return nil, fmt.Errorf("%w: key is not ECDSA P-256", ErrBadCSR)
	}
	notAfter := now.AddDate(nodeYears, 0, 0)
	if notAfter.After(ca.Cert.NotAfter) {
		notAfter = ca.Cert.NotAfter
	}
	if !now.Before(notAfter) {
		return nil, fmt.Errorf("cluster CA expired at %s", ca.Cert.NotAfter.UTC().Format(time.RFC3339))
	}
	serial, err := randomSerial(random)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: nodeID},
		DNSNames:     []string{NodeDNSName(nodeID)},
		NotBefore:    now.Add(-backdating),
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(random, tmpl, ca.Cert, csr.PublicKey, ca.Key)
	if err != nil {
		return nil, fmt.Errorf("create node certificate: %w", err)
	}
	return der, nil
}

// NodeDNSName is the DNS name in the certificate of node nodeID:
// "<nodeID>.node.tally".
func NodeDNSName(nodeID string) string {
	return nodeID + nodeDNSSuffix
}

// checkNodeCert checks that cert is a node certificate as SignNode makes
// them, signed by ca, and returns its node ID.
func checkNodeCert(cert, ca *x509.Certificate) (string, error) {
	nodeID := cert.Subject.CommonName
	if err := ValidNodeID(nodeID); err != nil {
		return "", err
	}
	if cert.IsCA {
		return "", fmt.Errorf("certificate of node %q is a CA", nodeID)
	}
	if !slices.Equal(cert.DNSNames, []string{NodeDNSName(nodeID)}) {
		return "", fmt.Errorf("certificate of node %q has DNS names %q, want only %q", nodeID, cert.DNSNames, NodeDNSName(nodeID))
	}
	for _, u := range []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth} {
		if !slices.Contains(cert.ExtKeyUsage, u) {
			return "", fmt.Errorf("certificate of node %q lacks server or client authentication", nodeID)
		}
	}
	if err := cert.CheckSignatureFrom(ca); err != nil {
		return "", fmt.Errorf("certificate of node %q is not signed by %q: %w", nodeID, ca.Subject.CommonName, err)
	}
	return nodeID, nil
}
