//go:build unix

package mdns

import "golang.org/x/sys/unix"

// reuseAddr lets several sockets bind port 5353, as every mDNS
// implementation does.
func reuseAddr(fd uintptr) error {
	if err := unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); err != nil {
		return err
	}
	return unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
}
