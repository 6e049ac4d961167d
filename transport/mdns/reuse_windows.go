//go:build windows

package mdns

import "syscall"

// reuseAddr lets several sockets bind port 5353, as every mDNS
// implementation does.
func reuseAddr(fd uintptr) error {
	return syscall.SetsockoptInt(syscall.Handle(fd), syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1)
}
