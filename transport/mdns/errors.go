package mdns

import "errors"

var (
	// ErrInvalidConfig means a Config or Service cannot be published: an
	// empty or too long instance name, a host outside .local, a service type
	// that is not "_name._tcp" or "_name._udp", or a port of zero.
	ErrInvalidConfig = errors.New("mdns: invalid configuration")

	// ErrNoInterfaces means no usable multicast interface was found.
	ErrNoInterfaces = errors.New("mdns: no multicast-capable interface is up")

	// ErrNameConflict means every name the responder tried while probing was
	// already in use on the link.
	ErrNameConflict = errors.New("mdns: name conflict could not be resolved")

	// ErrClosed means the responder has been closed.
	ErrClosed = errors.New("mdns: responder closed")

	// ErrStarted means Start was called twice.
	ErrStarted = errors.New("mdns: responder already started")
)
