package plugins_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDependsOnlyOnCore holds the dependency rule: plugins may use core,
// never raft, transport or the other parts of Tally.
func TestDependsOnlyOnCore(t *testing.T) {
	goCmd, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command")
	}
	out, err := exec.Command(goCmd, "list", "-deps", "-test", "github.com/tallyhq/tally/plugins/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, pkg := range strings.Fields(string(out)) {
		rest, ours := strings.CutPrefix(pkg, "github.com/tallyhq/tally/")
		if ours && !strings.HasPrefix(rest, "core") && !strings.HasPrefix(rest, "plugins") {
			t.Errorf("plugins depends on %s", pkg)
		}
	}
}
