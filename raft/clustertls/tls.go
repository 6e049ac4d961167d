package clustertls

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
)

// ServerTLS is the TLS configuration on which a node accepts its peers:
// TLS 1.3 only, the node's certificate shown, and a client certificate
// required that the cluster CA issued for client authentication. Rejected
// clients fail the handshake with an error wrapping ErrUntrustedPeer (or
// tls's own when they show no certificate at all).
func (id *Identity) ServerTLS() *tls.Config {
	verify := id.peerVerifier(x509.ExtKeyUsageClientAuth)
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{id.Cert},
		ClientAuth:   tls.RequireAnyClientCert,
		Time:         id.now,
		VerifyConnection: func(cs tls.ConnectionState) error {
			_, err := verify(cs.PeerCertificates)
			return err
		},
	}
}

// ClientTLS is the TLS configuration with which a node dials its peers:
// TLS 1.3 only, the node's certificate shown, and a server certificate
// required that the cluster CA issued for server authentication. Host names
// are not checked (InsecureSkipVerify turns off only the standard checks,
// which VerifyConnection replaces); use PeerNodeID to learn who answered.
func (id *Identity) ClientTLS() *tls.Config {
	verify := id.peerVerifier(x509.ExtKeyUsageServerAuth)
	cert := id.Cert
	return &tls.Config{
		MinVersion: tls.VersionTLS13,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return &cert, nil
		},
		InsecureSkipVerify: true,
		Time:               id.now,
		VerifyConnection: func(cs tls.ConnectionState) error {
			_, err := verify(cs.PeerCertificates)
			return err
		},
	}
}

// PeerNodeID returns the node ID of the peer on a connection whose
// handshake has completed, checking its certificate against the cluster CA
// again: the connection need not have been made with this Identity's
// configurations to be judged by it, and the certificate must be valid at
// Now. Errors wrap ErrUntrustedPeer.
func (id *Identity) PeerNodeID(cs tls.ConnectionState) (string, error) {
	if !cs.HandshakeComplete {
		return "", fmt.Errorf("%w: handshake not complete", ErrUntrustedPeer)
	}
	if cs.Version != tls.VersionTLS13 {
		return "", fmt.Errorf("%w: not TLS 1.3", ErrUntrustedPeer)
	}
	return id.peerVerifier(x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth)(cs.PeerCertificates)
}

// peerVerifier returns a function that checks a peer's certificates: the
// first must be a node certificate, valid now, that the cluster CA issued
// for one of usages. Whatever else the peer sent is ignored: the CA signs
// node certificates directly.
func (id *Identity) peerVerifier(usages ...x509.ExtKeyUsage) func([]*x509.Certificate) (string, error) {
	roots := x509.NewCertPool()
	if id.CA != nil {
		roots.AddCert(id.CA)
	}
	return func(certs []*x509.Certificate) (string, error) {
		if id.CA == nil {
			return "", fmt.Errorf("%w: identity has no cluster CA", ErrUntrustedPeer)
		}
		if len(certs) == 0 {
			return "", fmt.Errorf("%w: no certificate", ErrUntrustedPeer)
		}
		leaf := certs[0]
		_, err := leaf.Verify(x509.VerifyOptions{
			Roots:       roots,
			CurrentTime: id.now(),
			KeyUsages:   usages,
		})
		if err != nil {
			return "", fmt.Errorf("%w: certificate %q: %w", ErrUntrustedPeer, leaf.Subject.CommonName, err)
		}
		nodeID, err := checkNodeCert(leaf, id.CA)
		if err != nil {
			return "", fmt.Errorf("%w: %w", ErrUntrustedPeer, err)
		}
		return nodeID, nil
	}
}
