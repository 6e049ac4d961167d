package main

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tallyhq/tally/transport/mdns"
)

// TestFormingNodesWithSecret: with a bootstrap secret, only announcements
// proven with it count; one proven for another node ID, expectation or
// certificate does not.
func TestFormingNodesWithSecret(t *testing.T) {
	auth := newFormAuth([]byte("a secret of the founders"))
	other := newFormAuth([]byte("a secret of strangers!"))
	proven := func(in mdns.Instance, by *formAuth, id string, expect int, tls string) mdns.Instance {
		in.TXT["auth"] = by.announcement(id, expect, tls)
		return in
	}
	instances := []mdns.Instance{
		proven(peerInstance("b", "forming", "3", "10.0.0.2"), auth, "b", 3, testTLSHash),
		proven(peerInstance("c", "forming", "3", "10.0.0.3"), auth, "c", 3, testTLSHash),
		peerInstance("a", "forming", "3", "10.0.0.1"),                                       // no proof
		proven(peerInstance("a0", "forming", "3", "10.0.0.9"), other, "a0", 3, testTLSHash), // another secret
		proven(peerInstance("a1", "forming", "3", "10.0.0.8"), auth, "b", 3, testTLSHash),   // another node's proof
		proven(peerInstance("a2", "forming", "3", "10.0.0.7"), auth, "a2", 5, testTLSHash),  // another expectation
	}
	forming, _ := formingNodes(instances, 3, auth)
	if len(forming) != 2 || forming[0].ID != "b" || forming[1].ID != "c" {
		t.Fatalf("forming %+v, want b and c", forming)
	}
	// Without a secret every announcement counts, proven or not.
	if forming, _ := formingNodes(instances, 3, nil); len(forming) != 6 {
		t.Fatalf("without a secret: %+v", forming)
	}
}

// TestFormingServerWithSecret: the seed answers only requests proven with
// the secret, and the asking node takes only answers proven with it.
func TestFormingServerWithSecret(t *testing.T) {
	auth := newFormAuth([]byte("a secret of the founders"))
	stranger := newFormAuth([]byte("a secret of strangers!"))
	_, server, seedNode := startFormingServer(t, auth)
	defer server.stop()
	local := netip.MustParseAddr("127.0.0.1")
	server.seed.Store(testSeed(t, []formingNode{seedNode, {ID: "b", Addr: netip.AddrPortFrom(local, 40000)}}))
	req := formRequest{NodeID: "b", CSR: testCSR(t, "b")}
	ctx := context.Background()

	for _, tc := range []struct {
		name string
		auth *formAuth
	}{{"no proof", nil}, {"another secret", stranger}} {
		if _, err := askSeed(ctx, seedNode, req, local, tc.auth); err == nil || !strings.Contains(err.Error(), "bad_auth") {
			t.Fatalf("%s: %v", tc.name, err)
		}
	}
	if _, err := askSeed(ctx, seedNode, req, local, auth); err != nil {
		t.Fatal(err)
	}

	// A seed without the secret (a stranger's) is not believed.
	_, rogue, rogueNode := startFormingServer(t, nil)
	defer rogue.stop()
	rogue.seed.Store(testSeed(t, []formingNode{rogueNode, {ID: "b", Addr: netip.AddrPortFrom(local, 40000)}}))
	if _, err := askSeed(ctx, rogueNode, req, local, auth); err == nil || !strings.Contains(err.Error(), "not proven with the bootstrap secret") {
		t.Fatalf("an answer without the secret's proof: %v", err)
	}
}

func TestReadBootstrapSecret(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	a, err := readBootstrapSecret(write("ok", "sixteen bytes ok\n"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := readBootstrapSecret(write("same", "sixteen bytes ok"))
	if a.request([]byte("x")) != b.request([]byte("x")) {
		t.Fatal("a final line break changes the secret")
	}
	for _, bad := range []string{write("short", "fifteen bytes!!"), write("long", strings.Repeat("s", maxBootstrapSecret+1)), filepath.Join(dir, "missing")} {
		if _, err := readBootstrapSecret(bad); err == nil {
			t.Errorf("%s read", bad)
		}
	}
}
