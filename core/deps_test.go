package core_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestImportsNothingOutsideCore holds the dependency rule: core depends on
// nothing of Tally's but its own subpackages.
func TestImportsNothingOutsideCore(t *testing.T) {
	goCmd, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command")
	}
	out, err := exec.Command(goCmd, "list", "-deps", "github.com/tallyhq/tally/core/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, pkg := range strings.Fields(string(out)) {
		if strings.HasPrefix(pkg, "github.com/tallyhq/tally/") && !strings.HasPrefix(pkg, "github.com/tallyhq/tally/core") {
			t.Errorf("core depends on %s", pkg)
		}
	}
}
