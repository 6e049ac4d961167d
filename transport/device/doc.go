// Package device serves the device protocol tally-device/1 (see
// transport/deviceproto and its PROTOCOL.md) on a WebSocket: it turns
// device messages into core commands on a core.Store, signs what it tells
// devices with the node's licensing identity, and pushes lease changes to
// connected devices. It decides no licensing rule itself.
//
// Each connection has one reader goroutine (the one serving the HTTP
// request) and one writer goroutine that owns a bounded send queue. A
// device may pipeline up to Config.MaxInFlight requests, which run
// concurrently; the store batches them into log entries. A client that
// does not read its replies and pushes is disconnected when its queue
// overflows, so one slow device never holds memory or goroutines of the
// others. Replies that wait in the queue together are written to the
// socket in one write. Capability requests and their signed responses,
// most of the traffic, are read and written by hand-written JSON code
// that matches encoding/json (capabilityjson.go); everything else goes
// through encoding/json.
//
// Signing: an ECDSA P-256 signature costs about 30 µs of CPU, more than
// the rest of a checkout, so one goroutine signs whatever payloads are
// waiting when it is free: one payload alone is signed directly, several
// are signed as the root of a Merkle tree and each response carries its
// audit path. Under light load every response is signed on its own; under
// heavy load the cost of a signature is shared by the batch, without any
// waiting window.
//
// Onboarding and authentication run on the reading goroutine, like hello.
// The handler checks the device's signature over the connection's
// challenge; whether a first-authentication key may onboard the device is
// decided by core.Onboard in the state machine. A connection that speaks
// for an onboarded device is served only once it has proved it holds the
// device's key; its hello is applied only then. Refused attempts are
// counted per connection and close it at Config.MaxAuthFailures, and per
// source address across connections (Config.MaxSourceAuthFailures, one
// more every SourceAuthInterval), so reconnecting buys no more guesses.
//
// When a connection closes the handler applies core.Disconnect for its
// device (core frees the counts only when licensing.releaseOnDisconnect is
// on), unless the device has another connection open or the handler is
// shutting down: a node going away is not a device going away.
package device
