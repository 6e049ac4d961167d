package deviceproto_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestImportsNothingOfTallys keeps the package importable by device makers
// on its own: it must not pull in the server's packages, only its own
// subpackages (wirejson).
func TestImportsNothingOfTallys(t *testing.T) {
	goCmd, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command")
	}
	out, err := exec.Command(goCmd, "list", "-deps", "github.com/tallyhq/tally/transport/deviceproto").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, pkg := range strings.Fields(string(out)) {
		own := pkg == "github.com/tallyhq/tally/transport/deviceproto" || strings.HasPrefix(pkg, "github.com/tallyhq/tally/transport/deviceproto/")
		if strings.HasPrefix(pkg, "github.com/tallyhq/tally/") && !own {
			t.Errorf("deviceproto depends on %s", pkg)
		}
	}
}
