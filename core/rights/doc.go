// Package rights owns signed rights files: the offline form in which a
// software producer hands license rights to one Tally server. It issues
// them (the producer's side, used by `tallyctl producer issue`), verifies
// them (the server's side, before a core.LoadRights is proposed), reads the
// text form in which a producer writes feature lines, and holds the demo
// producer key and rights of `tallyd --dev`. It decides no licensing rule:
// whether a set of lines is newer than the one loaded, and how its counts are
// served, is package core's business.
//
// # The file
//
// A rights file (format "tally-rights/1") is one JSON object:
//
//	{"format":"tally-rights/1",
//	 "key":"<producer key fingerprint>",
//	 "payload":"<standard base64 of the payload JSON>",
//	 "signature":"<standard base64 of an ASN.1 ECDSA P-256 signature of SHA-256(payload)>"}
//
// and the payload, once decoded:
//
//	{"server":"<server fingerprint>","source":"<name>","sequence":N,
//	 "issued":"<RFC 3339>","lines":[<core.FeatureLine>...],"locks":{"<property>":"<value>"}}
//
// # What is bound to what, and why
//
// The signature covers the exact payload bytes, so a verifier checks what
// was signed before it parses any of it, and no re-encoding (key order,
// spacing, number forms) can make a valid signature fail or a changed
// payload pass. The payload is base64 inside the envelope for the same
// reason: the bytes survive any JSON tool that touches the file.
//
// The payload names the server it is for by the fingerprint of the server's
// licensing certificate (SHA-256 of the DER certificate, colon-separated
// upper-case hex, as `openssl x509 -noout -fingerprint -sha256` prints it),
// so rights bought for one server cannot be loaded into another. It names
// its source and a sequence number, so a newer file of the same source
// replaces the older one and an older one is refused (core refuses a
// sequence that is not above the loaded one, which stops replays). The
// envelope names the producer key by the fingerprint of its public key
// (SHA-256 of the DER SubjectPublicKeyInfo, in the same hex form), so a
// server that trusts several producer keys knows which one to check with;
// the key field is only a hint, because the signature must still verify
// with the trusted key it names. Locks are property values the producer
// fixes on that server; they travel inside the signed payload so an
// administrator cannot change them by editing the file.
//
// # The text form of feature lines
//
// A producer writes lines one per feature, blank lines and '#' comments
// allowed:
//
//	NAME VERSION COUNT [start=YYYY-MM-DD] [expiry=YYYY-MM-DD|permanent]
//	    [overdraft=N] [metered] [reusable] [undo=DURATION] [uncounted]
//	    [vendor="..."] [id=ID]
//
// Dates are UTC. A line starts at the beginning of its start date and is
// usable through the whole of its expiry date (it ends at the start of the
// next day). Durations are Go durations ("10m", "1h30m"). Any value may be
// quoted; inside quotes `\"` is a quote and `\\` a backslash, and '#' does
// not start a comment. ParseLines checks each line against the rules core
// applies to feature lines, so a mistake is reported with its line number
// when the file is made, not when a server refuses it.
//
// # The demo producer
//
// DemoProducerKey is a fixed key pair published in this source so that
// `tallyd --dev` can show signed rights without any setup. Anyone can sign
// with it: a server must trust it only in --dev mode, never in production.
package rights
