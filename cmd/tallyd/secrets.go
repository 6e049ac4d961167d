package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base32"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// The files tallyd keeps in its data directory besides the replicated store.
const (
	initialPasswordFile = "initial-admin-password"
	identityKeyFile     = "identity.key"
	identityCertFile    = "identity.cert"
	nodeIDFile          = "node-id"
)

// adminPassword finds the administrator's password: the initial password
// file if an earlier start wrote one, else TALLY_ADMIN_PASSWORD, else the
// file TALLY_ADMIN_PASSWORD_FILE names, else a new random password written
// once to the initial password file (mode 0600). It returns the password
// and where it came from, for the log.
func adminPassword(dataDir string, getenv func(string) string, random io.Reader) (password, source string, err error) {
	path := filepath.Join(dataDir, initialPasswordFile)
	if b, err := os.ReadFile(path); err == nil {
		return strings.TrimSpace(string(b)), path, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", "", fmt.Errorf("read the initial admin password: %w", err)
	}
	if p := getenv("TALLY_ADMIN_PASSWORD"); p != "" {
		return p, "TALLY_ADMIN_PASSWORD", nil
	}
	if f := getenv("TALLY_ADMIN_PASSWORD_FILE"); f != "" {
		b, err := os.ReadFile(f)
		if err != nil {
			return "", "", fmt.Errorf("TALLY_ADMIN_PASSWORD_FILE: %w", err)
		}
		if p := strings.TrimSpace(string(b)); p != "" {
			return p, f, nil
		}
		return "", "", fmt.Errorf("TALLY_ADMIN_PASSWORD_FILE %s is empty", f)
	}
	buf := make([]byte, 15)
	if _, err := io.ReadFull(random, buf); err != nil {
		return "", "", fmt.Errorf("generate a password: %w", err)
	}
	password = strings.ToLower(base32.StdEncoding.EncodeToString(buf))
	if err := writeNewFile(path, []byte(password+"\n")); err != nil {
		return "", "", fmt.Errorf("write the initial admin password: %w", err)
	}
	return password, path, nil
}

// nodeID returns the node's name in the cluster. The first start takes
// --node-id, or the host name, and keeps it in the data directory: the raft
// configuration names the node, so a later start under another name is
// refused rather than left without a leader.
func nodeID(dataDir, configured string) (string, error) {
	path := filepath.Join(dataDir, nodeIDFile)
	b, err := os.ReadFile(path)
	if err == nil {
		kept := strings.TrimSpace(string(b))
		if configured != "" && configured != kept {
			return "", fmt.Errorf("the data directory %s belongs to node %q, not %q: start with --node-id %s or another data directory", dataDir, kept, configured, kept)
		}
		return kept, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("read the node ID: %w", err)
	}
	id := configured
	if id == "" {
		host, err := os.Hostname()
		if err != nil || host == "" || strings.ContainsAny(host, " \t\n/") || len(host) > 64 {
			host = "tally"
		}
		id = host
	}
	if err := writeNewFile(path, []byte(id+"\n")); err != nil {
		return "", fmt.Errorf("write the node ID: %w", err)
	}
	return id, nil
}

// identity is the node's signing identity: an ECDSA P-256 key and a
// self-signed certificate for it. Capability responses to devices are
// signed with the key, and rights files are bound to the certificate's
// fingerprint.
type identity struct {
	Key         *ecdsa.PrivateKey
	Certificate []byte // DER
	Fingerprint string
}

// loadIdentity reads the identity from the data directory, creating the key
// and certificate at first start. The certificate names no host or address,
// so the identity survives a change of either.
func loadIdentity(dataDir, nodeID string, now time.Time, random io.Reader) (*identity, error) {
	keyPath := filepath.Join(dataDir, identityKeyFile)
	certPath := filepath.Join(dataDir, identityCertFile)
	keyPEM, err := os.ReadFile(keyPath)
	if errors.Is(err, fs.ErrNotExist) {
		return createIdentity(keyPath, certPath, nodeID, now, random)
	}
	if err != nil {
		return nil, fmt.Errorf("read the identity key: %w", err)
	}
	key, err := parseIdentityKey(keyPath, keyPEM)
	if err != nil {
		return nil, err
	}
	certPEM, err := os.ReadFile(certPath)
	if err != nil {
		return nil, fmt.Errorf("read the identity certificate: %w", err)
	}
	block, _ := pem.Decode(certPEM)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("identity certificate %s is not a PEM certificate", certPath)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("identity certificate %s: %w", certPath, err)
	}
	if pub, ok := cert.PublicKey.(*ecdsa.PublicKey); !ok || !pub.Equal(&key.PublicKey) {
		return nil, fmt.Errorf("identity certificate %s does not match the key in %s", certPath, keyPath)
	}
	return &identity{Key: key, Certificate: block.Bytes, Fingerprint: fingerprint(block.Bytes)}, nil
}

func createIdentity(keyPath, certPath, nodeID string, now time.Time, random io.Reader) (*identity, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), random)
	if err != nil {
		return nil, fmt.Errorf("generate the identity key: %w", err)
	}
	serial := make([]byte, 16)
	if _, err := io.ReadFull(random, serial); err != nil {
		return nil, fmt.Errorf("generate the identity certificate: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          new(big.Int).SetBytes(serial),
		Subject:               pkix.Name{CommonName: "Tally licensing ID", OrganizationalUnit: []string{nodeID}},
		NotBefore:             now.Add(-time.Hour).UTC(),
		NotAfter:              now.AddDate(50, 0, 0).UTC(),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(random, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("generate the identity certificate: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	// The certificate is written first: a crash between the two writes
	// leaves no key, and the next start makes a fresh pair.
	os.Remove(certPath)
	if err := writeNewFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})); err != nil {
		return nil, fmt.Errorf("write the identity certificate: %w", err)
	}
	if err := writeNewFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})); err != nil {
		return nil, fmt.Errorf("write the identity key: %w", err)
	}
	return &identity{Key: key, Certificate: der, Fingerprint: fingerprint(der)}, nil
}

func parseIdentityKey(path string, b []byte) (*ecdsa.PrivateKey, error) {
	block, _ := pem.Decode(b)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("identity key %s is not a PEM private key", path)
	}
	parsed, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("identity key %s: %w", path, err)
	}
	key, ok := parsed.(*ecdsa.PrivateKey)
	if !ok || key.Curve != elliptic.P256() {
		return nil, fmt.Errorf("identity key %s is not an ECDSA P-256 key", path)
	}
	return key, nil
}

// fingerprint is the SHA-256 of a DER certificate as colon-separated
// upper-case hex pairs, the form `openssl x509 -fingerprint -sha256` prints.
func fingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	parts := make([]string, len(sum))
	for i, b := range sum {
		parts[i] = fmt.Sprintf("%02X", b)
	}
	return strings.Join(parts, ":")
}

// writeNewFile creates path with mode 0600, refusing to replace a file, and
// syncs it so that a crash cannot leave it half written.
func writeNewFile(path string, data []byte) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Link(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	return os.Remove(tmp)
}
