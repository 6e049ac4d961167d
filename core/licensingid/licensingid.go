// Package licensingid owns the licensing ID: the identity a Tally server shows
// to the software producer's back office and signs with. An ID is an ECDSA
// P-256 key pair and a self-signed X.509 certificate. The certificate names
// only "Tally licensing ID" as its common name and carries no host name, IP
// address or node name, so renaming or readdressing a machine never changes
// its ID. It is valid for 50 years from one hour before it was made (the hour
// absorbs clock skew between a server and whoever checks the certificate), and
// its serial number is 128 random bits.
//
// An ID has three textual forms. String is the standard base64 of the DER
// SubjectPublicKeyInfo of the public key; Display is the first and last 10
// characters of String joined by "…", as administrators see it; Fingerprint
// is the SHA-256 of the DER certificate in colon-separated upper-case hex
// pairs, exactly as `openssl x509 -noout -fingerprint -sha256` prints it. The
// certificate exports as PEM (the .cert file) and the key as PKCS#8 PEM.
//
// Backup and Restore move an ID between machines as a password-encrypted
// file, a file of package sealed with the magic "TALLYIDB" (its comment
// gives the format and what Restore checks before it derives a key). The
// plaintext is the length of the PKCS#8 DER key as 2 bytes, the key, and
// then the DER certificate, at most 64 KiB. Backup uses 64 MiB, 3 passes
// and 4 lanes. ErrDamaged means the file is not a backup as written, and
// ErrWrongPassword means the file is intact but does not open with the
// password: the password is wrong, or someone who recomputed the checksum
// has tampered with the file.
package licensingid

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"strings"
	"time"
)

// CommonName is the subject and issuer common name of every licensing ID
// certificate.
const CommonName = "Tally licensing ID"

// validityYears is how long a new licensing ID certificate stays valid.
const validityYears = 50

// clockSkew backdates NotBefore so that a checker whose clock runs a little
// behind accepts a certificate made a moment ago.
const clockSkew = time.Hour

var (
	// ErrWrongPassword is returned by Restore when an intact backup does not
	// open with the password given.
	ErrWrongPassword = errors.New("wrong password for licensing ID backup")
	// ErrDamaged is returned by Restore when the data is not an intact
	// licensing ID backup: wrong magic or version, a bad length, a checksum
	// that does not match, or parameters out of bounds.
	ErrDamaged = errors.New("licensing ID backup is damaged")
	// ErrMismatch is returned when a certificate and a private key do not
	// belong together.
	ErrMismatch = errors.New("licensing ID certificate and key do not match")
	// ErrMalformed is returned when a certificate or key cannot be read or is
	// not an ECDSA P-256 licensing ID.
	ErrMalformed = errors.New("malformed licensing ID")
	// ErrEmptyPassword is returned by Backup when the password is empty.
	ErrEmptyPassword = errors.New("licensing ID backup password is empty")
)

// ID is a licensing ID: an ECDSA P-256 private key and the DER self-signed
// certificate of its public key.
type ID struct {
	Key         *ecdsa.PrivateKey
	Certificate []byte // DER
}

// Generate makes a new licensing ID whose certificate is valid from now (less
// an hour for clock skew) for 50 years. The key, serial number and signature
// draw on random.
func Generate(now time.Time, random io.Reader) (*ID, error) {
	if random == nil {
		return nil, errors.New("generate licensing ID: no source of randomness")
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), random)
	if err != nil {
		return nil, fmt.Errorf("generate licensing ID key: %w", err)
	}
	var serialBytes [16]byte
	if _, err := io.ReadFull(random, serialBytes[:]); err != nil {
		return nil, fmt.Errorf("generate licensing ID serial: %w", err)
	}
	serial := new(big.Int).SetBytes(serialBytes[:])
	if serial.Sign() == 0 {
		return nil, errors.New("generate licensing ID serial: source of randomness returned zeros")
	}
	name := pkix.Name{CommonName: CommonName}
	notBefore := now.Add(-clockSkew).UTC().Truncate(time.Second)
	template := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               name,
		Issuer:                name,
		NotBefore:             notBefore,
		NotAfter:              notBefore.AddDate(validityYears, 0, 0),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(random, template, template, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("generate licensing ID certificate: %w", err)
	}
	return &ID{Key: key, Certificate: der}, nil
}

// Parse reads a licensing ID from its PEM certificate (a CERTIFICATE block)
// and PEM private key (a PKCS#8 PRIVATE KEY block, or a SEC 1 EC PRIVATE KEY
// block as openssl writes it). Other PEM blocks before the wanted one are
// skipped. It returns an error wrapping ErrMalformed when either cannot be
// read, and ErrMismatch when the key is not the certificate's.
func Parse(certPEM, keyPEM []byte) (*ID, error) {
	certBlock := findPEM(certPEM, "CERTIFICATE")
	if certBlock == nil {
		return nil, fmt.Errorf("%w: no CERTIFICATE PEM block in the certificate", ErrMalformed)
	}
	keyBlock := findPEM(keyPEM, "PRIVATE KEY", "EC PRIVATE KEY")
	if keyBlock == nil {
		return nil, fmt.Errorf("%w: no PRIVATE KEY or EC PRIVATE KEY PEM block in the key", ErrMalformed)
	}
	var key *ecdsa.PrivateKey
	if keyBlock.Type == "EC PRIVATE KEY" {
		k, err := x509.ParseECPrivateKey(keyBlock.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%w: key: %w", ErrMalformed, err)
		}
		key = k
	} else {
		k, err := parsePKCS8(keyBlock.Bytes)
		if err != nil {
			return nil, err
		}
		key = k
	}
	return newID(key, certBlock.Bytes)
}

// findPEM returns the first PEM block in data of one of the given types, or
// nil. Each step consumes input, so the loop ends.
func findPEM(data []byte, types ...string) *pem.Block {
	for {
		block, rest := pem.Decode(data)
		if block == nil {
			return nil
		}
		for _, t := range types {
			if block.Type == t {
				return block
			}
		}
		data = rest
	}
}

// parsePKCS8 reads a PKCS#8 DER private key that must be ECDSA P-256.
func parsePKCS8(der []byte) (*ecdsa.PrivateKey, error) {
	k, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("%w: key: %w", ErrMalformed, err)
	}
	key, ok := k.(*ecdsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("%w: key is a %T, not ECDSA P-256", ErrMalformed, k)
	}
	return key, nil
}

// newID checks that key is ECDSA P-256, that certDER is a certificate of its
// public key signed by it, and returns the ID holding a copy of certDER.
func newID(key *ecdsa.PrivateKey, certDER []byte) (*ID, error) {
	if key == nil {
		return nil, fmt.Errorf("%w: no key", ErrMalformed)
	}
	if key.Curve != elliptic.P256() {
		return nil, fmt.Errorf("%w: key is on curve %s, not P-256", ErrMalformed, key.Curve.Params().Name)
	}
	cert, err := x509.ParseCertificate(certDER)
	if err != nil {
		return nil, fmt.Errorf("%w: certificate: %w", ErrMalformed, err)
	}
	pub, ok := cert.PublicKey.(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P256() {
		return nil, fmt.Errorf("%w: certificate key is not ECDSA P-256", ErrMalformed)
	}
	if !key.PublicKey.Equal(pub) {
		return nil, fmt.Errorf("%w: the key is not the one the certificate names", ErrMismatch)
	}
	if err := cert.CheckSignature(cert.SignatureAlgorithm, cert.RawTBSCertificate, cert.Signature); err != nil {
		return nil, fmt.Errorf("%w: certificate is not self-signed by its key: %w", ErrMalformed, err)
	}
	return &ID{Key: key, Certificate: append([]byte(nil), certDER...)}, nil
}

// CertificatePEM returns the certificate as a PEM CERTIFICATE block, the
// content of an exported .cert file.
func (id *ID) CertificatePEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: id.Certificate})
}

// KeyPEM returns the private key as a PKCS#8 PEM PRIVATE KEY block.
func (id *ID) KeyPEM() ([]byte, error) {
	if id.Key == nil {
		return nil, fmt.Errorf("%w: no key", ErrMalformed)
	}
	der, err := x509.MarshalPKCS8PrivateKey(id.Key)
	if err != nil {
		return nil, fmt.Errorf("encode licensing ID key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// String returns the ID string: the standard base64 of the DER
// SubjectPublicKeyInfo of the public key. It is empty for an ID without a
// usable key.
func (id *ID) String() string {
	if id == nil || id.Key == nil {
		return ""
	}
	der, err := x509.MarshalPKIXPublicKey(&id.Key.PublicKey)
	if err != nil {
		return ""
	}
	return base64.StdEncoding.EncodeToString(der)
}

// displayChars is how many characters of String Display shows at each end.
const displayChars = 10

// Display returns the short form of the ID string shown to administrators:
// its first and last 10 characters joined by "…".
func (id *ID) Display() string {
	s := id.String()
	if len(s) <= 2*displayChars {
		return s
	}
	return s[:displayChars] + "…" + s[len(s)-displayChars:]
}

// Fingerprint returns the SHA-256 fingerprint of the ID's certificate.
func (id *ID) Fingerprint() string {
	return Fingerprint(id.Certificate)
}

// Fingerprint returns the SHA-256 of a DER certificate as colon-separated
// upper-case hex pairs, the form `openssl x509 -noout -fingerprint -sha256`
// prints after "sha256 Fingerprint=".
func Fingerprint(certDER []byte) string {
	sum := sha256.Sum256(certDER)
	h := strings.ToUpper(hex.EncodeToString(sum[:]))
	var b strings.Builder
	b.Grow(len(h) + len(sum) - 1)
	for i := 0; i < len(h); i += 2 {
		if i > 0 {
			b.WriteByte(':')
		}
		b.WriteString(h[i : i+2])
	}
	return b.String()
}
