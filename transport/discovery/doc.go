// Package discovery is Tally's LAN presence protocol on UDP 30005: how a
// device finds Tally servers with no configuration (DISCOVER, answered by a
// signed OFFER), how a server finds devices (SCAN, answered by PRESENT),
// checks that they are online (PING, PONG) and invites one to onboard
// (INVITE, signed, answered by nothing), and the Wake-on-LAN magic packet.
// docs/discovery.md is the wire specification.
//
// Packets are a fixed 22-byte header (magic "TLY", version 1, type, flags,
// 16-byte nonce) and type-length-value fields in ascending tag order, at
// most 1,200 bytes. Decode is strict: exactly one encoding of each packet
// is accepted, so Encode(Decode(b)) == b, and anything else is ErrMalformed
// (or ErrVersion for another version).
//
// An OFFER carries the main licensing ID certificate and is signed with
// its key, over a context string and the packet up to the signature. A
// device checks that the signature verifies with the certificate's key,
// that the fingerprint is the certificate's (and the pinned one), that the
// nonce is the one it sent and that the timestamp is near its clock, so a
// replayed or forged OFFER, or one from a rogue server, is refused. An
// INVITE is signed the same way in a context of its own; a device takes it
// only for one of its own HostIDs, from a licensing ID it trusts, near its
// clock and with a nonce it has not taken before.
//
// A server must not be a reflection amplifier: no reply is more than
// three times the size of its request, none goes to a port below 1024, and
// replies are rate-limited per source address and in total. Requesters pad
// their requests to 400 bytes so that any valid reply passes.
//
// Responder is the server side (tallyd), Discover and Answerer the device
// side (tally-agent). The package imports nothing of Tally's, so an agent
// build pulls in only the standard library. Sockets, clocks and randomness
// come in through the configs.
package discovery
