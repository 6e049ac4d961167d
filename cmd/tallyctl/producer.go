package main

import (
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/tallyhq/tally/core/rights"
)

func (c *cli) producer(args []string) error {
	sub, args, err := subcommand("producer", args, "keygen", "issue")
	if err != nil {
		return err
	}
	if sub == "keygen" {
		return c.keygen(args)
	}
	return c.issue(args)
}

// keygen writes a new producer key pair; it never overwrites a file.
func (c *cli) keygen(args []string) error {
	fs := c.commandFlags("producer keygen")
	var prefix string
	fs.StringVar(&prefix, "out", "", "")
	if _, err := parseArgs(fs, args, 0, 0, "producer keygen --out PREFIX"); err != nil {
		return err
	}
	if prefix == "" {
		return usageError("producer keygen needs --out PREFIX")
	}
	keyFile, pubFile := prefix+".key", prefix+".pub"
	for _, f := range []string{keyFile, pubFile} {
		if _, err := os.Lstat(f); err == nil {
			return fmt.Errorf("%s exists; not overwriting it", f)
		}
	}
	key, err := rights.GenerateKey(c.random)
	if err != nil {
		return err
	}
	privPEM, err := rights.MarshalPrivateKey(key)
	if err != nil {
		return err
	}
	pubPEM, err := rights.MarshalPublicKey(&key.PublicKey)
	if err != nil {
		return err
	}
	if err := writeNew(keyFile, privPEM, 0o600); err != nil {
		return err
	}
	if err := writeNew(pubFile, pubPEM, 0o644); err != nil {
		os.Remove(keyFile)
		return err
	}
	fp := rights.KeyFingerprint(&key.PublicKey)
	if c.opts.json {
		return c.encodeJSON(map[string]string{"key": keyFile, "publicKey": pubFile, "fingerprint": fp})
	}
	fmt.Fprintf(c.stdout, "wrote %s (keep it secret) and %s\nkey fingerprint: %s\n", keyFile, pubFile, fp)
	return nil
}

// writeNew creates a file that must not exist yet.
func writeNew(name string, data []byte, perm os.FileMode) error {
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		if errors.Is(err, os.ErrExist) {
			return fmt.Errorf("%s exists; not overwriting it", name)
		}
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(name)
		return err
	}
	if err := f.Close(); err != nil {
		os.Remove(name)
		return err
	}
	return nil
}

// locksFlag collects repeated --lock NAME=VALUE flags.
type locksFlag map[string]string

func (l locksFlag) String() string { return "" }

func (l locksFlag) Set(s string) error {
	name, value, ok := strings.Cut(s, "=")
	if !ok || name == "" {
		return fmt.Errorf("want NAME=VALUE, got %q", s)
	}
	if _, dup := l[name]; dup {
		return fmt.Errorf("%s is locked twice", name)
	}
	l[name] = value
	return nil
}

// issue signs feature lines in the text form for one server.
func (c *cli) issue(args []string) error {
	const shape = "producer issue --key FILE --server FINGERPRINT --source NAME --sequence N --lines FILE [--lock NAME=VALUE]... [--out FILE]"
	fs := c.commandFlags("producer issue")
	var keyFile, server, source, sequence, linesFile, out string
	locks := locksFlag{}
	fs.StringVar(&keyFile, "key", "", "")
	fs.StringVar(&server, "server", "", "")
	fs.StringVar(&source, "source", "", "")
	fs.StringVar(&sequence, "sequence", "", "")
	fs.StringVar(&linesFile, "lines", "", "")
	fs.StringVar(&out, "out", "", "")
	fs.Var(locks, "lock", "")
	if _, err := parseArgs(fs, args, 0, 0, shape); err != nil {
		return err
	}
	for _, f := range [][2]string{{"--key", keyFile}, {"--server", server}, {"--source", source}, {"--sequence", sequence}, {"--lines", linesFile}} {
		if f[1] == "" {
			return usageError("producer issue needs %s", f[0])
		}
	}
	fp, err := canonicalFingerprint(server)
	if err != nil {
		return usageError("--server: %v", err)
	}
	seq, err := strconv.ParseUint(sequence, 10, 64)
	if err != nil || seq == 0 {
		return usageError("--sequence %q is not a whole number above 0", sequence)
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return err
	}
	key, err := rights.ParsePrivateKey(keyPEM)
	if err != nil {
		return fmt.Errorf("%s: %w", keyFile, err)
	}
	text, err := os.ReadFile(linesFile)
	if err != nil {
		return err
	}
	lines, err := rights.ParseLines(text)
	if err != nil {
		return fmt.Errorf("%s: %w", linesFile, err)
	}
	if len(lines) == 0 {
		return fmt.Errorf("%s: no feature lines", linesFile)
	}
	r := rights.Rights{Server: fp, Source: source, Sequence: seq, Issued: c.now().UTC(), Lines: lines}
	if len(locks) > 0 {
		r.Locks = locks
	}
	file, err := rights.Issue(key, r, c.random)
	if err != nil {
		return err
	}
	if out == "" {
		_, err := c.stdout.Write(file)
		return err
	}
	if err := os.WriteFile(out, file, 0o644); err != nil {
		return err
	}
	if c.opts.json {
		return c.encodeJSON(map[string]any{"file": out, "server": fp, "source": source, "sequence": seq, "lines": len(lines)})
	}
	fmt.Fprintf(c.stdout, "wrote %s: %d lines from %q at sequence %d for server %s\n", out, len(lines), source, seq, fp)
	return nil
}

// canonicalFingerprint accepts a SHA-256 certificate fingerprint with or
// without colons, in either case, and with openssl's "sha256
// Fingerprint=" prefix, and returns it as colon-separated upper-case hex.
func canonicalFingerprint(s string) (string, error) {
	if _, after, ok := strings.Cut(s, "="); ok {
		s = after
	}
	raw, err := hex.DecodeString(strings.ReplaceAll(strings.TrimSpace(s), ":", ""))
	if err != nil || len(raw) != 32 {
		return "", fmt.Errorf("%q is not a SHA-256 fingerprint (32 hex pairs)", s)
	}
	pairs := make([]string, len(raw))
	for i, b := range raw {
		pairs[i] = fmt.Sprintf("%02X", b)
	}
	return strings.Join(pairs, ":"), nil
}
