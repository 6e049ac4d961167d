package main

import (
	"encoding/base32"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/tallyhq/tally/core/licensingid"
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

// loadIdentity reads the node's local licensing ID from the data
// directory, making it at first start. Capability responses to devices are
// signed with its key, and rights files are bound to its fingerprint. The
// certificate names no host or address, so the ID survives a change of
// either.
func loadIdentity(dataDir string, now time.Time, random io.Reader) (*licensingid.ID, error) {
	keyPath := filepath.Join(dataDir, identityKeyFile)
	certPath := filepath.Join(dataDir, identityCertFile)
	keyPEM, err := os.ReadFile(keyPath)
	if errors.Is(err, fs.ErrNotExist) {
		return createIdentity(keyPath, certPath, now, random)
	}
	if err != nil {
		return nil, fmt.Errorf("read the licensing ID key: %w", err)
	}
	certPEM, err := os.ReadFile(certPath)
	if err != nil {
		return nil, fmt.Errorf("read the licensing ID certificate: %w", err)
	}
	id, err := licensingid.Parse(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("licensing ID in %s: %w", dataDir, err)
	}
	return id, nil
}

func createIdentity(keyPath, certPath string, now time.Time, random io.Reader) (*licensingid.ID, error) {
	id, err := licensingid.Generate(now, random)
	if err != nil {
		return nil, err
	}
	keyPEM, err := id.KeyPEM()
	if err != nil {
		return nil, err
	}
	// The certificate is written first: a crash between the two writes
	// leaves no key, and the next start makes a fresh pair.
	os.Remove(certPath)
	if err := writeNewFile(certPath, id.CertificatePEM()); err != nil {
		return nil, fmt.Errorf("write the licensing ID certificate: %w", err)
	}
	if err := writeNewFile(keyPath, keyPEM); err != nil {
		return nil, fmt.Errorf("write the licensing ID key: %w", err)
	}
	return id, nil
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
