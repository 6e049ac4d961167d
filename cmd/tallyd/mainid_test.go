package main

import (
	"context"
	"crypto/rand"
	"testing"
	"time"

	"github.com/tallyhq/tally/core/licensingid"
	"github.com/tallyhq/tally/raft"
)

func TestMainLicensingIDIsTheFirstProposed(t *testing.T) {
	node, err := raft.Open(raft.Config{DataDir: t.TempDir(), NodeID: "n1"})
	if err != nil {
		t.Fatal(err)
	}
	defer node.Close()
	ctx := context.Background()
	now := time.Now()
	first, _ := licensingid.Generate(now, rand.Reader)
	second, _ := licensingid.Generate(now, rand.Reader)

	main, err := mainLicensingID(ctx, node, first, "n1")
	if err != nil || main.Fingerprint() != first.Fingerprint() {
		t.Fatalf("first: %v %v", main, err)
	}
	// Another local ID (another node, or a node whose files were replaced)
	// does not displace the main one.
	main, err = mainLicensingID(ctx, node, second, "n2")
	if err != nil || main.Fingerprint() != first.Fingerprint() {
		t.Fatalf("second: %v %v", main, err)
	}
	// A restore replaces it in the store, and writes the node's files.
	dir := t.TempDir()
	if _, err := loadIdentity(dir, now, rand.Reader); err != nil {
		t.Fatal(err)
	}
	if err := (&identityRestorer{dataDir: dir, store: node, nodeID: "n1"}).restore(second); err != nil {
		t.Fatal(err)
	}
	main, err = mainLicensingID(ctx, node, first, "n1")
	if err != nil || main.Fingerprint() != second.Fingerprint() {
		t.Fatalf("after restore: %v %v", main, err)
	}
	local, err := loadIdentity(dir, now, rand.Reader)
	if err != nil || local.Fingerprint() != second.Fingerprint() {
		t.Fatalf("local after restore: %v %v", local, err)
	}
}
