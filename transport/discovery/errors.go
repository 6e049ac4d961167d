package discovery

import "errors"

// Sentinel errors. Callers test for them with errors.Is; the wrapped message
// says which field or check failed.
var (
	// ErrVersion is returned by Decode for a packet with Tally's magic and a
	// version other than 1.
	ErrVersion = errors.New("discovery: unsupported packet version")
	// ErrMalformed is returned by Decode for anything that is not a well-formed
	// version 1 packet: wrong magic, truncated, oversized, an unknown type,
	// flag or field, a field out of bounds, out of order or repeated, or a
	// required field missing.
	ErrMalformed = errors.New("discovery: malformed packet")
	// ErrTooLarge is returned by Encode when a packet would exceed
	// MaxPacketSize.
	ErrTooLarge = errors.New("discovery: packet too large")
	// ErrInvalid is returned by Encode when a packet's fields break the
	// limits of the specification, and by Responder.Invite for an
	// invitation it must not send.
	ErrInvalid = errors.New("discovery: invalid packet")
	// ErrNonce is returned when an answer does not echo the nonce of the
	// request it claims to answer (a replay or a stray packet).
	ErrNonce = errors.New("discovery: nonce does not match the request")
	// ErrBadSignature is returned when the signature of an OFFER or INVITE
	// does not verify with the public key of the certificate it carries.
	ErrBadSignature = errors.New("discovery: bad signature")
	// ErrBadCertificate is returned when the certificate of an OFFER or
	// INVITE cannot be parsed or does not hold an ECDSA P-256 key.
	ErrBadCertificate = errors.New("discovery: bad licensing ID certificate")
	// ErrFingerprint is returned when the fingerprint of an OFFER or INVITE
	// is not the SHA-256 of its certificate, or not the pinned fingerprint.
	ErrFingerprint = errors.New("discovery: fingerprint mismatch")
	// ErrStale is returned when the timestamp of an OFFER or INVITE is
	// further from the local clock than the allowed skew.
	ErrStale = errors.New("discovery: timestamp out of range")
	// ErrNoOffer is returned by Discover when no verified OFFER arrived.
	ErrNoOffer = errors.New("discovery: no verified offer")
	// ErrBadMAC is returned by Wake for a hardware address that is not a
	// 48-bit Ethernet MAC.
	ErrBadMAC = errors.New("discovery: not a 48-bit MAC address")
	// ErrConfig is returned by the constructors for a configuration that
	// cannot work (no connection, no signer, a certificate that does not
	// match the signer).
	ErrConfig = errors.New("discovery: invalid configuration")
)

func isVersion(err error) bool { return errors.Is(err, ErrVersion) }
