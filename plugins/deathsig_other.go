//go:build !linux

package plugins

import "os/exec"

// setParentDeathSignal does nothing where the kernel has no parent-death
// signal; Serve's parent watch ends built-in connectors there.
func setParentDeathSignal(*exec.Cmd) {}
