package transport

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/tallyhq/tally/core/atomicfile"
)

// Names of the generated certificate files in the data directory.
const (
	certFileName = "tls.crt"
	keyFileName  = "tls.key"
	certValidity = 10 * 365 * 24 * time.Hour
)

// ErrCertificate is wrapped by LoadOrCreateCertificate when a certificate
// or key cannot be read, does not parse, or the two do not match.
var ErrCertificate = errors.New("transport: TLS certificate")

// LoadOrCreateCertificate returns the HTTPS certificate. Given certFile and
// keyFile (PEM), it loads them. Otherwise it loads dataDir/tls.crt and
// dataDir/tls.key, and when neither exists yet it generates them: an ECDSA
// P-256 key and a self-signed certificate valid for ten years from now, for
// hosts (IP addresses and names) and localhost, 127.0.0.1 and ::1. The
// certificate is its own CA, so a client can trust the file directly
// (tallyctl --ca). The key is written with mode 0600. When only one of the
// two files exists it refuses to guess and says so. A nil random means
// crypto/rand.Reader.
func LoadOrCreateCertificate(certFile, keyFile, dataDir string, hosts []string, now time.Time, random io.Reader) (tls.Certificate, error) {
	if random == nil {
		random = rand.Reader
	}
	if certFile != "" || keyFile != "" {
		if certFile == "" || keyFile == "" {
			return tls.Certificate{}, fmt.Errorf("%w: give both a certificate file and a key file", ErrCertificate)
		}
		return loadKeyPair(certFile, keyFile)
	}
	if dataDir == "" {
		return tls.Certificate{}, fmt.Errorf("%w: no certificate files and no data directory", ErrCertificate)
	}
	certPath, keyPath := filepath.Join(dataDir, certFileName), filepath.Join(dataDir, keyFileName)
	certExists, err := exists(certPath)
	if err != nil {
		return tls.Certificate{}, err
	}
	keyExists, err := exists(keyPath)
	if err != nil {
		return tls.Certificate{}, err
	}
	switch {
	case certExists && keyExists:
		return loadKeyPair(certPath, keyPath)
	case certExists != keyExists:
		return tls.Certificate{}, fmt.Errorf("%w: only one of %s and %s exists; remove it to have a new pair generated",
			ErrCertificate, certPath, keyPath)
	}
	certPEM, keyPEM, err := generateCertificate(hosts, now, random)
	if err != nil {
		return tls.Certificate{}, err
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return tls.Certificate{}, fmt.Errorf("%w: %w", ErrCertificate, err)
	}
	if err := writeFileAtomic(keyPath, keyPEM, 0o600); err != nil {
		return tls.Certificate{}, err
	}
	if err := writeFileAtomic(certPath, certPEM, 0o644); err != nil {
		return tls.Certificate{}, err
	}
	return loadKeyPair(certPath, keyPath)
}

func exists(path string) (bool, error) {
	_, err := os.Stat(path)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	}
	return false, fmt.Errorf("%w: %w", ErrCertificate, err)
}

func loadKeyPair(certFile, keyFile string) (tls.Certificate, error) {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("%w: reading certificate: %w", ErrCertificate, err)
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("%w: reading key: %w", ErrCertificate, err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("%w: %s and %s: %w", ErrCertificate, certFile, keyFile, err)
	}
	return cert, nil
}

// generateCertificate makes a self-signed ECDSA P-256 certificate and key
// in PEM.
func generateCertificate(hosts []string, now time.Time, random io.Reader) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), random)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: generating key: %w", ErrCertificate, err)
	}
	serial, err := randomSerial(random)
	if err != nil {
		return nil, nil, err
	}
	var ips []net.IP
	var names []string
	for _, h := range append(slices.Clone(hosts), "localhost", "127.0.0.1", "::1") {
		if h == "" {
			continue
		}
		if ip := net.ParseIP(h); ip != nil {
			if !ip.IsUnspecified() && !slices.ContainsFunc(ips, ip.Equal) {
				ips = append(ips, ip)
			}
		} else if !slices.Contains(names, h) {
			names = append(names, h)
		}
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "tally " + names[0], Organization: []string{"Tally"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(certValidity),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		DNSNames:              names,
		IPAddresses:           ips,
	}
	der, err := x509.CreateCertificate(random, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: creating certificate: %w", ErrCertificate, err)
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: encoding key: %w", ErrCertificate, err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8}), nil
}

func randomSerial(random io.Reader) (*big.Int, error) {
	var b [16]byte
	if _, err := io.ReadFull(random, b[:]); err != nil {
		return nil, fmt.Errorf("%w: serial number: %w", ErrCertificate, err)
	}
	b[0] &= 0x7f
	serial := new(big.Int).SetBytes(b[:])
	if serial.Sign() == 0 {
		serial.SetInt64(1)
	}
	return serial, nil
}

// writeFileAtomic replaces path with data (core/atomicfile).
func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	if err := atomicfile.Write(path, data, mode); err != nil {
		return fmt.Errorf("%w: %w", ErrCertificate, err)
	}
	return nil
}

// TLSConfig returns the server TLS configuration for cert: TLS 1.2 or
// later, forward-secret AEAD cipher suites only for TLS 1.2, HTTP/2 and
// HTTP/1.1 offered (device WebSockets use HTTP/1.1).
func TLSConfig(cert tls.Certificate) *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{cert},
		CipherSuites: []uint16{
			tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
			tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
			tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
			tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
			tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
			tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
		},
		NextProtos: []string{"h2", "http/1.1"},
	}
}
