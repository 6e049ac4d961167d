package clustertls

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"slices"
	"strings"
	"testing"
	"testing/iotest"
	"time"
)

func TestNewCA(t *testing.T) {
	ca := newTestCA(t, "prod-eu")
	c := ca.Cert
	if got, want := c.Subject.CommonName, "Tally cluster CA prod-eu"; got != want {
		t.Errorf("common name %q, want %q", got, want)
	}
	if !c.IsCA || !c.BasicConstraintsValid || c.MaxPathLen != 0 || !c.MaxPathLenZero {
		t.Errorf("IsCA %v, basic constraints %v, MaxPathLen %d (zero %v); want a CA with path length 0",
			c.IsCA, c.BasicConstraintsValid, c.MaxPathLen, c.MaxPathLenZero)
	}
	if c.KeyUsage != x509.KeyUsageCertSign|x509.KeyUsageCRLSign {
		t.Errorf("key usage %b, want CertSign|CRLSign", c.KeyUsage)
	}
	if !c.NotBefore.Equal(testNow.Add(-time.Hour)) || !c.NotAfter.Equal(testNow.AddDate(30, 0, 0)) {
		t.Errorf("valid %s .. %s, want an hour before now for 30 years", c.NotBefore, c.NotAfter)
	}
	if c.SerialNumber.Sign() <= 0 || c.SerialNumber.BitLen() > 128 {
		t.Errorf("serial %s is not a positive 128-bit number", c.SerialNumber)
	}
	if !isP256(c.PublicKey) || !ca.Key.PublicKey.Equal(c.PublicKey) {
		t.Error("certificate does not carry the CA's P-256 key")
	}
	if !bytes.Equal(ca.CertDER, c.Raw) {
		t.Error("CertDER is not Cert.Raw")
	}
	if other := newTestCA(t, "prod-eu"); other.Cert.SerialNumber.Cmp(c.SerialNumber) == 0 {
		t.Error("two CAs share a serial number")
	}
}

func TestNewCARefuses(t *testing.T) {
	for _, cluster := range []string{"", strings.Repeat("x", 48), "tab\there", "\xff"} {
		if _, err := NewCA(cluster, testNow, nil); !errors.Is(err, ErrBadCA) {
			t.Errorf("NewCA(%q) = %v, want ErrBadCA", cluster, err)
		}
	}
	if _, err := NewCA(strings.Repeat("x", 47), testNow, nil); err != nil {
		t.Errorf("NewCA with a 47-byte name: %v", err)
	}
	if _, err := NewCA("c", testNow, iotest.ErrReader(errors.New("no entropy"))); err == nil {
		t.Error("NewCA with a failing random source succeeded")
	}
}

func TestCAPEMRoundTrip(t *testing.T) {
	ca := newTestCA(t, "c1")
	certPEM, keyPEM, err := ca.MarshalPEM()
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseCA(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.CertDER, ca.CertDER) || !got.Key.Equal(ca.Key) {
		t.Error("parsed CA differs from the marshalled one")
	}
	// A SEC 1 key, as openssl ecparam writes it, is read as well.
	sec1, err := x509.MarshalECPrivateKey(ca.Key)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ParseCA(certPEM, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: sec1})); err != nil {
		t.Errorf("ParseCA with a SEC 1 key: %v", err)
	}
	// The parsed CA signs nodes the original's certificate accepts.
	_, certDER := signTestNode(t, got, "n1")
	if err := mustParseCert(t, certDER).CheckSignatureFrom(ca.Cert); err != nil {
		t.Error(err)
	}
}

func TestParseCARefuses(t *testing.T) {
	ca := newTestCA(t, "c1")
	certPEM, keyPEM, err := ca.MarshalPEM()
	if err != nil {
		t.Fatal(err)
	}
	_, otherKeyPEM, err := newTestCA(t, "c2").MarshalPEM()
	if err != nil {
		t.Fatal(err)
	}
	node := newTestNode(t, ca, "n1")
	nodePEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: node.Cert.Certificate[0]})
	nodeKeyPEM, err := marshalKeyPEM(node.Cert.PrivateKey.(*ecdsa.PrivateKey))
	if err != nil {
		t.Fatal(err)
	}
	p384PEM, p384KeyPEM := selfSignedCA(t, elliptic.P384())
	damaged := bytes.Replace(certPEM, []byte("MII"), []byte("MIX"), 1)

	tests := []struct {
		name            string
		certPEM, keyPEM []byte
	}{
		{"key of another CA", certPEM, otherKeyPEM},
		{"node certificate as CA", nodePEM, nodeKeyPEM},
		{"P-384 CA", p384PEM, p384KeyPEM},
		{"damaged certificate", damaged, keyPEM},
		{"empty certificate", nil, keyPEM},
		{"empty key", certPEM, nil},
		{"key as certificate", keyPEM, keyPEM},
		{"certificate as key", certPEM, certPEM},
		{"two certificates", append(slices.Clone(certPEM), certPEM...), keyPEM},
		{"trailing junk", append(slices.Clone(certPEM), "junk"...), keyPEM},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := ParseCA(tt.certPEM, tt.keyPEM); !errors.Is(err, ErrBadCA) {
				t.Errorf("ParseCA = %v, want ErrBadCA", err)
			}
		})
	}
}

// selfSignedCA makes a CA on curve as ParseCA must refuse it.
func selfSignedCA(t *testing.T, curve elliptic.Curve) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(curve, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "Tally cluster CA odd"},
		NotBefore:             testNow,
		NotAfter:              testNow.AddDate(1, 0, 0),
		KeyUsage:              x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
}

func TestSignNode(t *testing.T) {
	ca := newTestCA(t, "c1")
	key, certDER := signTestNode(t, ca, "node-1")
	c := mustParseCert(t, certDER)
	if c.Subject.CommonName != "node-1" {
		t.Errorf("common name %q", c.Subject.CommonName)
	}
	if !slices.Equal(c.DNSNames, []string{"node-1.node.tally"}) {
		t.Errorf("DNS names %q, want [node-1.node.tally]", c.DNSNames)
	}
	if !slices.Equal(c.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}) {
		t.Errorf("extended key usage %v, want server and client authentication", c.ExtKeyUsage)
	}
	if c.KeyUsage != x509.KeyUsageDigitalSignature {
		t.Errorf("key usage %b, want DigitalSignature", c.KeyUsage)
	}
	if c.IsCA {
		t.Error("node certificate is a CA")
	}
	if !c.NotBefore.Equal(testNow.Add(-time.Hour)) || !c.NotAfter.Equal(testNow.AddDate(10, 0, 0)) {
		t.Errorf("valid %s .. %s, want an hour before now for 10 years", c.NotBefore, c.NotAfter)
	}
	if !key.PublicKey.Equal(c.PublicKey) {
		t.Error("certificate does not carry the requester's key")
	}
	if err := c.CheckSignatureFrom(ca.Cert); err != nil {
		t.Error(err)
	}
	if !bytes.Equal(c.AuthorityKeyId, ca.Cert.SubjectKeyId) || len(c.AuthorityKeyId) == 0 {
		t.Error("authority key ID does not name the CA")
	}
}

func TestSignNodeEndsWithCA(t *testing.T) {
	ca := newTestCA(t, "c1")
	key, err := NewNodeKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	csr, err := NodeCSR(key, "n1", 2, nil)
	if err != nil {
		t.Fatal(err)
	}
	late := testNow.AddDate(25, 0, 0)
	der, err := ca.SignNode(csr, "n1", late, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := mustParseCert(t, der).NotAfter; !got.Equal(ca.Cert.NotAfter) {
		t.Errorf("certificate signed 5 years before the CA ends is valid until %s, want %s", got, ca.Cert.NotAfter)
	}
	if _, err := ca.SignNode(csr, "n1", ca.Cert.NotAfter, nil); err == nil {
		t.Error("an expired CA signed a node")
	}
}

func TestSignNodeRefuses(t *testing.T) {
	ca := newTestCA(t, "c1")
	key, err := NewNodeKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	csr, err := NodeCSR(key, "node-1", 2, nil)
	if err != nil {
		t.Fatal(err)
	}
	// The request's signed content altered: it now asks for node-2.
	tampered := bytes.Replace(csr, []byte("node-1"), []byte("node-2"), 1)
	if bytes.Equal(tampered, csr) {
		t.Fatal("node ID not found in the request")
	}
	// The request's signature altered: its last byte belongs to s.
	badSig := slices.Clone(csr)
	badSig[len(badSig)-1] ^= 1
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p384CSR, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "node-1"}}, p384)
	if err != nil {
		t.Fatal(err)
	}
	badIDCSR, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "node 1"}}, key)
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name   string
		csr    []byte
		nodeID string
	}{
		{"common name of another node", csr, "node-2"},
		{"tampered content", tampered, "node-2"},
		{"tampered signature", badSig, "node-1"},
		{"P-384 key", p384CSR, "node-1"},
		{"invalid node ID", badIDCSR, "node 1"},
		{"not a request", ca.CertDER, "node-1"},
		{"empty", nil, "node-1"},
		{"truncated", csr[:len(csr)/2], "node-1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := ca.SignNode(tt.csr, tt.nodeID, testNow, nil); !errors.Is(err, ErrBadCSR) {
				t.Errorf("SignNode = %v, want ErrBadCSR", err)
			}
		})
	}
}

func TestValidNodeID(t *testing.T) {
	tests := []struct {
		nodeID string
		ok     bool
	}{
		{"node-1", true},
		{"a", true},
		{"Node_2.eu-west", true},
		{strings.Repeat("x", 64), true},
		{"", false},
		{strings.Repeat("x", 65), false},
		{"node 1", false},
		{"node/1", false},
		{"nöde", false},
		{"node\x00", false},
		{"node:1", false},
	}
	for _, tt := range tests {
		err := ValidNodeID(tt.nodeID)
		if tt.ok && err != nil {
			t.Errorf("ValidNodeID(%q) = %v, want nil", tt.nodeID, err)
		}
		if !tt.ok && !errors.Is(err, ErrBadNodeID) {
			t.Errorf("ValidNodeID(%q) = %v, want ErrBadNodeID", tt.nodeID, err)
		}
	}
	if _, err := NodeCSR(mustNodeKey(t), "bad id", 2, nil); !errors.Is(err, ErrBadNodeID) {
		t.Errorf("NodeCSR with a bad node ID = %v, want ErrBadNodeID", err)
	}
}

func mustNodeKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	key, err := NewNodeKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

// TestCSRLevel: the level NodeCSR writes is the one CSRLevel reads; a
// request of an older release (no level) reads as 1; a level in another
// form is refused; a member signs a request whatever its level says.
func TestCSRLevel(t *testing.T) {
	ca := newTestCA(t, "test")
	key := mustNodeKey(t)
	for _, level := range []int{1, 2, 7} {
		csr, err := NodeCSR(key, "n1", level, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := CSRLevel(csr); err != nil || got != level {
			t.Fatalf("level %d read as %d, %v", level, got, err)
		}
		if _, err := ca.SignNode(csr, "n1", time.Now(), nil); err != nil {
			t.Fatalf("level %d: %v", level, err)
		}
	}
	for _, level := range []int{0, -1, maxLevel + 1} {
		if _, err := NodeCSR(key, "n1", level, nil); err == nil {
			t.Errorf("NodeCSR made a request of level %d", level)
		}
	}
	request := func(ou ...string) []byte {
		der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
			Subject: pkix.Name{CommonName: "n1", OrganizationalUnit: ou}}, key)
		if err != nil {
			t.Fatal(err)
		}
		return der
	}
	if got, err := CSRLevel(request()); err != nil || got != 1 {
		t.Fatalf("a request without a level read as %d, %v", got, err)
	}
	if got, err := CSRLevel(request("ops")); err != nil || got != 1 {
		t.Fatalf("a request with another unit read as %d, %v", got, err)
	}
	for _, bad := range [][]string{{"state-level x"}, {"state-level 02"}, {"state-level 0"}, {"state-level 2", "state-level 3"}, {"state-level  2"}} {
		if got, err := CSRLevel(request(bad...)); !errors.Is(err, ErrBadCSR) {
			t.Errorf("units %q read as %d, %v", bad, got, err)
		}
	}
	if _, err := CSRLevel([]byte("not DER")); !errors.Is(err, ErrBadCSR) {
		t.Errorf("garbage: %v", err)
	}
}
