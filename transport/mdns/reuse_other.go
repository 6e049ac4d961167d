//go:build !unix && !windows

package mdns

// reuseAddr does nothing where the system has no socket options.
func reuseAddr(uintptr) error { return nil }
