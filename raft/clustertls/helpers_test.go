package clustertls

import (
	"crypto/ecdsa"
	"crypto/x509"
	"testing"
	"time"
)

// testNow is the clock of every test: certificates are made and checked
// against it, never against the wall clock.
var testNow = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

func clockAt(t time.Time) func() time.Time { return func() time.Time { return t } }

func newTestCA(t *testing.T, cluster string) *CA {
	t.Helper()
	ca, err := NewCA(cluster, testNow, nil)
	if err != nil {
		t.Fatalf("NewCA(%q): %v", cluster, err)
	}
	return ca
}

// newTestNode joins node nodeID to ca the way a real join does: its own key,
// a request, the CA's signature.
func newTestNode(t *testing.T, ca *CA, nodeID string) *Identity {
	t.Helper()
	key, certDER := signTestNode(t, ca, nodeID)
	id, err := NewIdentity(ca.CertDER, certDER, key)
	if err != nil {
		t.Fatalf("NewIdentity(%q): %v", nodeID, err)
	}
	id.Now = clockAt(testNow)
	return id
}

func signTestNode(t *testing.T, ca *CA, nodeID string) (*ecdsa.PrivateKey, []byte) {
	t.Helper()
	key, err := NewNodeKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	csr, err := NodeCSR(key, nodeID, 2, nil)
	if err != nil {
		t.Fatal(err)
	}
	certDER, err := ca.SignNode(csr, nodeID, testNow, nil)
	if err != nil {
		t.Fatalf("SignNode(%q): %v", nodeID, err)
	}
	return key, certDER
}

func mustParseCert(t *testing.T, der []byte) *x509.Certificate {
	t.Helper()
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}
