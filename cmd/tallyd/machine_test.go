package main

import (
	"log/slog"
	"runtime"
	"strings"
	"testing"
)

// TestBuildDescription: the build ends with the Go release and platform,
// after the VCS revision when the binary has one.
func TestBuildDescription(t *testing.T) {
	got := buildDescription()
	if want := runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH; !strings.HasSuffix(got, want) {
		t.Fatalf("build %q does not end with %q", got, want)
	}
}

// TestMachineHostIDs: the hostids come from package hw, each valid and
// none twice; a machine without readable ones gives none, not an error.
func TestMachineHostIDs(t *testing.T) {
	ids := machineHostIDs(slog.New(slog.DiscardHandler))()
	seen := map[string]bool{}
	for _, id := range ids {
		if id.Value == "" || seen[id.String()] {
			t.Fatalf("hostids %v", ids)
		}
		seen[id.String()] = true
	}
	t.Logf("hostids of this machine: %v", ids)
}
