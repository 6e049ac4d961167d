package plugins

import (
	"os/exec"
	"syscall"
)

// setParentDeathSignal has the kernel SIGKILL the connector when tallyd
// dies, even by SIGKILL, when no cleanup of tallyd's own can run. (The
// signal follows the death of the thread that started the process; the Go
// runtime keeps its threads unless a goroutine exits while locked to one,
// which tallyd does not do.)
func setParentDeathSignal(cmd *exec.Cmd) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
}
