// Package deviceproto is the device protocol tally-device/1 as a device
// sees it: the messages that cross the WebSocket at /ws/device, how
// capability responses are signed and verified, and a Client that device
// makers import to talk to a Tally server.
//
// It depends on nothing of Tally's but its own subpackage wirejson (the
// hand-written JSON of the frequent messages, which the server shares), so
// that a device build pulls in only the standard library and
// gorilla/websocket. PROTOCOL.md in this directory is the reference for
// implementers in other languages.
//
// Every capability response and lease push carries a payload signed with
// the server's licensing identity key (ECDSA P-256). The welcome message
// hands the device the identity certificate, so it can keep responses and
// check them later without the server. When many responses are produced at
// once the server signs the root of a Merkle tree over them and gives each
// response its audit path (see Proof); Verify handles both forms.
//
// A device onboards once with a first-authentication key and a key pair
// of its own (ECDSA P-256 or Ed25519; GenerateDeviceKey, MarshalDeviceKey,
// ParseDeviceKey), proving that it holds the private key by signing the
// connection's challenge (OnboardDigest). Every later connection
// authenticates by signing its challenge again (AuthDigest); Dial does
// that by itself when ClientConfig.Key is set.
package deviceproto
