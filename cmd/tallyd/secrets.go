package main

import (
	"context"
	"encoding/base32"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/tallyhq/tally/core"
	"github.com/tallyhq/tally/core/atomicfile"
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
	if err := finishRestore(keyPath, certPath); err != nil {
		return nil, err
	}
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
	if err := writeSynced(tmp, data); err != nil {
		return err
	}
	if err := os.Link(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	return os.Remove(tmp)
}

// Suffixes of the files a licensing ID restore writes beside the pair.
const (
	restoringSuffix = ".restoring" // the restored pair before it takes the place of the current one
	previousSuffix  = ".previous"  // the pair a restore replaced
)

// identityRestorer keeps a licensing ID restored through the API for the
// next start of tallyd: the running node signs with the ID it started with.
type identityRestorer struct {
	dataDir string
	store   core.Store // nil: the data directory alone
	nodeID  string
	mu      sync.Mutex
}

// restore makes id the main licensing ID in the store (when there is one)
// and writes it over identity.key and identity.cert, keeping the pair
// it replaces as identity.key.previous and identity.cert.previous. Each
// file is written to a temporary name and synced before it is renamed into
// place; the rename of the key is the point of no return, and a start that
// finds the certificate not yet renamed finishes the job (finishRestore).
func (r *identityRestorer) restore(id *licensingid.ID) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.store != nil {
		// The store first: it is what every node signs with from its next
		// start. Files written without it would be overridden then.
		m, err := asMainID(id, r.nodeID)
		if err != nil {
			return fmt.Errorf("restore the licensing ID: %w", err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		cmd := &core.Audited{Actor: core.Actor{User: "tallyd", Address: "local"}, Command: &core.SetMainLicensingID{ID: m, Replace: true}}
		if _, err := r.store.Apply(ctx, cmd); err != nil {
			return fmt.Errorf("restore the licensing ID: %w", err)
		}
	}
	keyPath := filepath.Join(r.dataDir, identityKeyFile)
	certPath := filepath.Join(r.dataDir, identityCertFile)
	keyPEM, err := id.KeyPEM()
	if err != nil {
		return fmt.Errorf("restore the licensing ID: %w", err)
	}
	for _, path := range []string{keyPath, certPath} {
		old, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("restore the licensing ID: keep the current one: %w", err)
		}
		if err := writeFileAtomic(path+previousSuffix, old); err != nil {
			return fmt.Errorf("restore the licensing ID: keep the current one: %w", err)
		}
	}
	if err := writeSynced(keyPath+restoringSuffix, keyPEM); err != nil {
		return fmt.Errorf("restore the licensing ID: %w", err)
	}
	if err := writeSynced(certPath+restoringSuffix, id.CertificatePEM()); err != nil {
		os.Remove(keyPath + restoringSuffix)
		return fmt.Errorf("restore the licensing ID: %w", err)
	}
	if err := syncDir(r.dataDir); err != nil {
		return fmt.Errorf("restore the licensing ID: %w", err)
	}
	if err := os.Rename(keyPath+restoringSuffix, keyPath); err != nil {
		os.Remove(keyPath + restoringSuffix)
		os.Remove(certPath + restoringSuffix)
		return fmt.Errorf("restore the licensing ID: %w", err)
	}
	if err := os.Rename(certPath+restoringSuffix, certPath); err != nil {
		return fmt.Errorf("restore the licensing ID: %w", err)
	}
	return syncDir(r.dataDir)
}

// finishRestore completes or abandons a restore that a crash interrupted.
// Before the key's rename both restored files wait beside the pair: the
// restore did not happen, and they are removed. After it, only the
// certificate waits, and it takes its place.
func finishRestore(keyPath, certPath string) error {
	_, keyErr := os.Stat(keyPath + restoringSuffix)
	_, certErr := os.Stat(certPath + restoringSuffix)
	switch {
	case certErr == nil && errors.Is(keyErr, fs.ErrNotExist):
		if err := os.Rename(certPath+restoringSuffix, certPath); err != nil {
			return fmt.Errorf("finish restoring the licensing ID: %w", err)
		}
		return syncDir(filepath.Dir(certPath))
	case keyErr == nil:
		os.Remove(keyPath + restoringSuffix)
		os.Remove(certPath + restoringSuffix)
	}
	return nil
}

// writeSynced writes path with mode 0600, replacing it, and syncs it.
func writeSynced(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
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
	return f.Close()
}

// writeFileAtomic replaces path with data, mode 0600 (core/atomicfile).
func writeFileAtomic(path string, data []byte) error { return atomicfile.Write(path, data, 0o600) }

// syncDir makes the renames in dir durable.
func syncDir(dir string) error { return atomicfile.SyncDir(dir) }
