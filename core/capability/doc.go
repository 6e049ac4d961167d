// Package capability owns the wire formats of the exchange between a Tally
// server and the software producer's back office: the capability request a
// server signs with its main licensing ID, and the capability response the
// back office signs with a producer key. It signs, reads and verifies them
// and keeps no state: which response a server accepts, and what it does
// with the usage and lines, is package core's business (core.BeginSync,
// core.PendingSync, core.CompleteSync).
//
// # The envelope
//
// Both are signed envelopes as rights files are (package rights), one JSON
// object:
//
//	{"format":"tally-capability-request/1" or "tally-capability-response/1",
//	 "key":"<signer fingerprint>",
//	 "payload":"<standard base64 of the payload JSON>",
//	 "signature":"<standard base64 of an ASN.1 ECDSA P-256 signature>"}
//
// The signature covers SHA-256 of the format string as signing context, a
// zero byte, and the exact payload bytes. The context keeps each signature
// to its format: a rights file's signature (no context), a discovery OFFER's
// ("tally-offer/1") or a request's never passes for a response, even when
// the same key made them.
//
// # The request
//
// Signed with the main licensing ID; "key" is the fingerprint of its
// certificate (SHA-256 of the DER, colon-separated upper-case hex). The
// payload:
//
//	{"server":"<fingerprint>","certificate":"<base64 DER>","sequence":N,
//	 "issued":"<RFC 3339>",
//	 "usage":[{"id":N,"from":"…","to":"…",
//	           "features":[{"name":"cad","version":"1.0","checkouts":N,"peakUsed":N}]}],
//	 "activations":[{"activationId":"…","count":N}]}
//
// The request carries its certificate, so the back office can verify it
// before it knows the server: ParseRequest checks that the server and key
// fields are the certificate's fingerprint and the signature its key's.
// Whether that certificate is registered, and whether the sequence is new,
// is the back office's to decide. Usage windows carry IDs the server gives
// once and never changes, so the back office records each window once
// however often it arrives; an activation says how many counts of the
// entitlement the server is to hold from now on, 0 to return them, so
// asking twice does no harm.
//
// # The response
//
// Signed with a producer key the server trusts; "key" is that key's
// fingerprint, as in rights files. The payload:
//
//	{"server":"<fingerprint>","requestSequence":N,"sequence":N,
//	 "issued":"<RFC 3339>","lines":[<core.FeatureLine>...],
//	 "locks":{"<property>":"<value>"},"usageAck":N,
//	 "activations":[{"activationId":"…","count":N,"result":"ok|unknown|exceeds"}]}
//
// It names the server it is for, so a response for another server is
// refused (ErrWrongServer); the request it answers, so core refuses one that
// does not answer the pending request; and its own sequence, strictly
// increasing per server, so core refuses a replay. The lines are the whole
// set the back office grants the server (they carry no source; core loads
// them as one rights source); usageAck is the highest usage window it has
// recorded.
package capability
