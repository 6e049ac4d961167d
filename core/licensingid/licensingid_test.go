package licensingid

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// testNow is the clock of every test that makes an ID.
var testNow = time.Date(2025, 3, 14, 15, 9, 26, 0, time.UTC)

// testRandom returns a deterministic source of randomness for one test.
func testRandom(seed byte) *rand.ChaCha8 {
	var s [32]byte
	s[0] = seed
	return rand.NewChaCha8(s)
}

func generate(t *testing.T, seed byte) *ID {
	t.Helper()
	id, err := Generate(testNow, testRandom(seed))
	if err != nil {
		t.Fatalf("Generate: %v", err)
	}
	return id
}

func TestGenerateCertificate(t *testing.T) {
	id := generate(t, 1)
	cert, err := x509.ParseCertificate(id.Certificate)
	if err != nil {
		t.Fatalf("ParseCertificate: %v", err)
	}
	if cert.Subject.String() != "CN="+CommonName || cert.Issuer.String() != "CN="+CommonName {
		t.Errorf("subject %q, issuer %q; want only CN=%s", cert.Subject, cert.Issuer, CommonName)
	}
	if len(cert.DNSNames)+len(cert.IPAddresses)+len(cert.EmailAddresses)+len(cert.URIs) != 0 {
		t.Errorf("certificate names a host: %v %v %v %v", cert.DNSNames, cert.IPAddresses, cert.EmailAddresses, cert.URIs)
	}
	if !cert.NotBefore.Before(testNow) || cert.NotBefore.Before(testNow.Add(-2*time.Hour)) {
		t.Errorf("NotBefore %v, want shortly before %v", cert.NotBefore, testNow)
	}
	if want := cert.NotBefore.AddDate(50, 0, 0); !cert.NotAfter.Equal(want) {
		t.Errorf("NotAfter %v, want %v (50 years)", cert.NotAfter, want)
	}
	if cert.SerialNumber.Sign() <= 0 || cert.SerialNumber.BitLen() > 128 {
		t.Errorf("serial %v is not a positive 128-bit number", cert.SerialNumber)
	}
	pub, ok := cert.PublicKey.(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P256() || !id.Key.PublicKey.Equal(pub) {
		t.Errorf("certificate key %T is not the ID's P-256 key", cert.PublicKey)
	}
	if err := cert.CheckSignature(cert.SignatureAlgorithm, cert.RawTBSCertificate, cert.Signature); err != nil {
		t.Errorf("certificate is not self-signed: %v", err)
	}
	other := generate(t, 2)
	if other.String() == id.String() || other.Fingerprint() == id.Fingerprint() {
		t.Errorf("two IDs from different randomness are equal")
	}
}

func TestGenerateShortRandomness(t *testing.T) {
	if _, err := Generate(testNow, bytes.NewReader(make([]byte, 8))); err == nil {
		t.Fatal("Generate with 8 bytes of randomness succeeded")
	}
	if _, err := Generate(testNow, nil); err == nil {
		t.Fatal("Generate with no randomness succeeded")
	}
}

// TestOpenSSLFixture pins String, Display and Fingerprint to what openssl
// computed for an ID that openssl made (testdata/openssl.*, a test-only key).
func TestOpenSSLFixture(t *testing.T) {
	id := parseFiles(t, "testdata/openssl.cert", "testdata/openssl.key")
	const (
		wantString      = "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAELUgZN9zcKw9mQsUHFGeManDjIwiJ1+Vs4D0gqUMvQgqywh/1eqz9bwH5bUqWVtFhI5t3Ke2YR4VQv5twFm+0FQ=="
		wantDisplay     = "MFkwEwYHKo…twFm+0FQ=="
		wantFingerprint = "04:D2:C3:A0:65:0F:87:F7:1D:F9:6A:E6:61:9D:4E:9C:96:30:B4:75:E9:E0:7C:8A:F5:F2:EE:4F:E1:57:1E:BD"
	)
	if got := id.String(); got != wantString {
		t.Errorf("String() = %q, want %q", got, wantString)
	}
	if got := id.Display(); got != wantDisplay {
		t.Errorf("Display() = %q, want %q", got, wantDisplay)
	}
	if got := id.Fingerprint(); got != wantFingerprint {
		t.Errorf("Fingerprint() = %q, want %q", got, wantFingerprint)
	}
}

func parseFiles(t *testing.T, certFile, keyFile string) *ID {
	t.Helper()
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		t.Fatal(err)
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	id, err := Parse(certPEM, keyPEM)
	if err != nil {
		t.Fatalf("Parse(%s, %s): %v", certFile, keyFile, err)
	}
	return id
}

func TestStringAndDisplay(t *testing.T) {
	id := generate(t, 3)
	s := id.String()
	der, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		t.Fatalf("String() %q is not standard base64: %v", s, err)
	}
	pub, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		t.Fatalf("String() is not a SubjectPublicKeyInfo: %v", err)
	}
	if !id.Key.PublicKey.Equal(pub) {
		t.Errorf("String() is not the ID's public key")
	}
	d := id.Display()
	if want := s[:10] + "…" + s[len(s)-10:]; d != want {
		t.Errorf("Display() = %q, want %q", d, want)
	}
	if n := utf8.RuneCountInString(d); n != 21 {
		t.Errorf("Display() has %d characters, want 21", n)
	}
}

func TestFingerprintForm(t *testing.T) {
	fp := Fingerprint([]byte("abc"))
	// SHA-256("abc") from FIPS 180-2.
	const want = "BA:78:16:BF:8F:01:CF:EA:41:41:40:DE:5D:AE:22:23:B0:03:61:A3:96:17:7A:9C:B4:10:FF:61:F2:00:15:AD"
	if fp != want {
		t.Errorf("Fingerprint(abc) = %q, want %q", fp, want)
	}
	id := generate(t, 4)
	if !regexp.MustCompile(`^([0-9A-F]{2}:){31}[0-9A-F]{2}$`).MatchString(id.Fingerprint()) {
		t.Errorf("Fingerprint() = %q, not 32 colon-separated upper-case hex pairs", id.Fingerprint())
	}
}

// TestOpenSSLReadsExport checks the exported .cert and key with openssl: the
// fingerprint it prints is Tally's, and its public key is the ID string.
func TestOpenSSLReadsExport(t *testing.T) {
	openssl, err := exec.LookPath("openssl")
	if err != nil {
		t.Skip("openssl is not installed")
	}
	id := generate(t, 5)
	dir := t.TempDir()
	certFile := filepath.Join(dir, "licensing-id.cert")
	keyFile := filepath.Join(dir, "licensing-id.key")
	if err := os.WriteFile(certFile, id.CertificatePEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	keyPEM, err := id.KeyPEM()
	if err != nil {
		t.Fatalf("KeyPEM: %v", err)
	}
	if err := os.WriteFile(keyFile, keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}

	out, err := exec.Command(openssl, "x509", "-noout", "-fingerprint", "-sha256", "-in", certFile).Output()
	if err != nil {
		t.Fatalf("openssl x509 -fingerprint: %v", err)
	}
	_, fp, ok := strings.Cut(strings.TrimSpace(string(out)), "=")
	if !ok || fp != id.Fingerprint() {
		t.Errorf("openssl prints %q, Tally shows %q", out, id.Fingerprint())
	}

	for _, args := range [][]string{
		{"x509", "-noout", "-pubkey", "-in", certFile},
		{"pkey", "-pubout", "-in", keyFile},
	} {
		out, err := exec.Command(openssl, args...).Output()
		if err != nil {
			t.Fatalf("openssl %s: %v", strings.Join(args, " "), err)
		}
		block, _ := pem.Decode(out)
		if block == nil || base64.StdEncoding.EncodeToString(block.Bytes) != id.String() {
			t.Errorf("openssl %s prints %q, want the key of ID %s", strings.Join(args, " "), out, id.String())
		}
	}
}

func TestParseRoundTrip(t *testing.T) {
	id := generate(t, 6)
	keyPEM, err := id.KeyPEM()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(keyPEM, []byte("-----BEGIN PRIVATE KEY-----\n")) {
		t.Errorf("KeyPEM is not a PKCS#8 PRIVATE KEY block:\n%s", keyPEM)
	}
	if !bytes.HasPrefix(id.CertificatePEM(), []byte("-----BEGIN CERTIFICATE-----\n")) {
		t.Errorf("CertificatePEM is not a CERTIFICATE block:\n%s", id.CertificatePEM())
	}
	got, err := Parse(id.CertificatePEM(), keyPEM)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if !bytes.Equal(got.Certificate, id.Certificate) || !got.Key.Equal(id.Key) {
		t.Errorf("Parse(export) is not the exported ID")
	}
}

func TestParseRefuses(t *testing.T) {
	a, b := generate(t, 7), generate(t, 8)
	aKey, _ := a.KeyPEM()
	bKey, _ := b.KeyPEM()
	p384, err := ecdsa.GenerateKey(elliptic.P384(), testRandom(9))
	if err != nil {
		t.Fatal(err)
	}
	p384DER, err := x509.MarshalPKCS8PrivateKey(p384)
	if err != nil {
		t.Fatal(err)
	}
	p384PEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: p384DER})
	otherBlock := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: []byte{1, 2, 3}})
	garbled := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: a.Certificate[:len(a.Certificate)/2]})

	tests := []struct {
		name         string
		certPEM, key []byte
		want         error
	}{
		{"key of another ID", a.CertificatePEM(), bKey, ErrMismatch},
		{"no certificate", nil, aKey, ErrMalformed},
		{"certificate is not PEM", a.Certificate, aKey, ErrMalformed},
		{"only another block", otherBlock, aKey, ErrMalformed},
		{"truncated certificate", garbled, aKey, ErrMalformed},
		{"no key", a.CertificatePEM(), nil, ErrMalformed},
		{"key block holds the certificate", a.CertificatePEM(), bytes.ReplaceAll(a.CertificatePEM(), []byte("CERTIFICATE"), []byte("PRIVATE KEY")), ErrMalformed},
		{"P-384 key", a.CertificatePEM(), p384PEM, ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, err := Parse(tt.certPEM, tt.key)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Parse = %v, %v; want %v", id, err, tt.want)
			}
		})
	}
}

func TestParseSkipsOtherBlocks(t *testing.T) {
	id := generate(t, 10)
	keyPEM, _ := id.KeyPEM()
	params := pem.EncodeToMemory(&pem.Block{Type: "EC PARAMETERS", Bytes: []byte{6, 8, 42, 134, 72, 206, 61, 3, 1, 7}})
	got, err := Parse(id.CertificatePEM(), append(params, keyPEM...))
	if err != nil {
		t.Fatalf("Parse with an EC PARAMETERS block first: %v", err)
	}
	if got.Fingerprint() != id.Fingerprint() {
		t.Errorf("Parse gave another ID")
	}
}
