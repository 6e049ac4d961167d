package clustertls

import "errors"

// Sentinel errors.
var (
	// ErrBadCA says a cluster CA could not be made or read, or is not one:
	// not a CA, a key other than P-256, a key that does not match its
	// certificate, damaged PEM.
	ErrBadCA = errors.New("bad cluster CA")
	// ErrBadCSR says CA.SignNode refused a certificate request.
	ErrBadCSR = errors.New("bad certificate request")
	// ErrBadIdentity says a node identity does not hold together: a node
	// certificate the CA did not sign, a key that does not match it,
	// damaged files.
	ErrBadIdentity = errors.New("bad node identity")
	// ErrBadNodeID says a node ID is not 1 to 64 characters of
	// [A-Za-z0-9._-].
	ErrBadNodeID = errors.New("bad node ID")
	// ErrBadToken says a join token is not written as NewJoinToken writes
	// one.
	ErrBadToken = errors.New("bad join token")
	// ErrUntrustedPeer says a TLS peer did not show a valid node
	// certificate of the cluster CA.
	ErrUntrustedPeer = errors.New("untrusted cluster peer")
)
