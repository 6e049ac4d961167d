package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tallyhq/tally/plugins"
)

// TestBuiltinConnectorIsTallyd: the dir connector runs as the tallyd binary
// re-executed ("tallyd connector dir"), spoken to over go-plugin.
func TestBuiltinConnectorIsTallyd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs tallyd")
	}
	bin := filepath.Join(buildBinaries(t), "tallyd")
	// Run by hand it says what it is and fails.
	out, err := exec.Command(bin, "connector", "dir", "--dir", t.TempDir()).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "this is a Tally connector") {
		t.Fatalf("by hand: %v\n%s", err, out)
	}

	// From this test tallyd is another binary: it is pinned by checksum.
	exe, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(exe)
	dir := t.TempDir()
	host, err := plugins.NewHost(plugins.Spec{Name: "dir", Command: []string{bin, "connector", "dir", "--dir", dir}, SHA256: hex.EncodeToString(sum[:])},
		plugins.Config{CallTimeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	defer host.Close()
	ctx := context.Background()
	d, err := host.Describe(ctx)
	if err != nil || d.Name != "dir" || !d.Offline {
		t.Fatalf("describe: %+v %v", d, err)
	}
	if _, err := host.Exchange(ctx, []byte("signed request")); !errors.Is(err, plugins.ErrNoResponseYet) {
		t.Fatalf("exchange before a response: %v", err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "out", "request-1.bin")); err != nil || string(b) != "signed request" {
		t.Fatalf("request file: %q %v", b, err)
	}
	if err := os.WriteFile(filepath.Join(dir, "in", "response-1.bin"), []byte("signed response"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got, err := host.Exchange(ctx, []byte("signed request")); err != nil || string(got) != "signed response" {
		t.Fatalf("exchange: %q %v", got, err)
	}
}
