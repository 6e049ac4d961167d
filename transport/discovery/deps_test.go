package discovery_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestImportsNothingOfTallys keeps the package importable by tally-agent
// and device builds on its own: it must not pull in the server's packages.
func TestImportsNothingOfTallys(t *testing.T) {
	goCmd, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command")
	}
	out, err := exec.Command(goCmd, "list", "-deps", "github.com/tallyhq/tally/transport/discovery").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, pkg := range strings.Fields(string(out)) {
		if strings.HasPrefix(pkg, "github.com/tallyhq/tally/") && pkg != "github.com/tallyhq/tally/transport/discovery" {
			t.Errorf("discovery depends on %s", pkg)
		}
		if first, _, _ := strings.Cut(pkg, "/"); strings.Contains(first, ".") && first != "github.com" {
			t.Errorf("discovery depends on the third-party package %s", pkg)
		}
		if strings.HasPrefix(pkg, "github.com/") && !strings.HasPrefix(pkg, "github.com/tallyhq/") {
			t.Errorf("discovery depends on the third-party package %s", pkg)
		}
	}
}
