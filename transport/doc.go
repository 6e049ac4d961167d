// Package transport serves Tally's HTTPS REST API on port 8443: the routes
// under /api/v1, the OpenAPI document that lists them, /metrics, the events
// WebSocket of the admin UI (/api/v1/events), and the mount points of the
// device WebSocket (/ws/device, whose protocol lives in transport/device)
// and of the UI itself (Config.UI, every GET outside /api/ that no route
// takes). It owns the wire: TLS certificates, authentication,
// request decoding, paging, status codes and error bodies. It decides no
// licensing rule; every change is a core command applied through a
// core.Store, and every read copies what it needs out of a core.State.
//
// # Requests and errors
//
// Bodies are JSON (strict: one value, no unknown fields, bounded size)
// except the license model, which is text/plain, and rights files, which
// may also come as application/octet-stream. A wrong Content-Type is 415, a
// body past its limit 413, a wrong method 405 with Allow. Every error is
// {"error":"one line","code":"snake_case"}; errorFor is the one place that
// turns errors into status codes: core's sentinels by errors.Is (invalid
// 400, unknown 404, conflicts 409, a forbidden drop 403, not applied 503),
// refused rights files 400 bad_rights, and anything unknown 500 with a
// generic message and the detail in the log.
//
// # Authentication and roles
//
// POST /api/v1/auth/login checks a user's password (package core/password,
// argon2id; the key derivation runs outside the store's read, a few at a
// time) and returns a stateless bearer token: base64url of the claims
// {user, epoch, expires, nonce}, a dot, and base64url of their
// HMAC-SHA256 under the replicated token key. Every node therefore accepts
// every token. A token is valid while its MAC matches, it has not expired
// (it lives for the property security.tokenDuration), its user exists and
// the user's token epoch is still the one it names: logout, a password
// change and the loss of a role move the epoch on and end every earlier
// token of the user at once. Logins of unknown users are checked against a
// stand-in hash, so they take as long as real ones.
//
// Failed logins are limited twice by token buckets, refilled one every
// twelve seconds: five per remote address (an IPv6 address counts by its
// /64) and ten per user name from any number of addresses; a limited login
// gets 429 with Retry-After, and a wrong current password at a password
// change counts against the user's bucket. When security.enabled is false,
// requests from a loopback address without an Authorization header act as
// the user "anonymous@loopback" with the ADMIN role; a token that is
// presented must still be valid. Health, login, the OpenAPI document and
// /metrics need no token.
//
// Server.routeTable is the one place that says which right each route
// needs: the views, this node's description (GET /api/v1/server), the
// audit log, the licensing ID and the caller's own logout and password are
// open to every user (every role may read); reservations and the license
// model need RESERVATIONS, rights uploads and the offline exchange with the
// back office (its status included) OFFLINE, dropping a device DROPDEVICE, first-authentication keys KEYS
// (even to list them, since the list can show their secrets), and
// properties, users, the client key and the licensing ID's backup and
// restore ADMIN, which holds every right. Discovery scans, online checks
// and Wake-on-LAN send packets on the LAN and need ADMIN; the scan's
// progress and the discovered devices (kept in memory on the node that
// scanned, not replicated) are views. A caller without the right gets 403
// {"error":"access denied: needs the RESERVATIONS role","code":"access_denied"}
// before the body is read.
//
// Every change the API makes is applied as a core.Audited with the caller's
// name and remote IP, so the replicated, hash-chained audit log
// (GET /api/v1/audit) says who changed what, when and from where. Passwords
// are hashed here and only their hashes enter commands; the log's details
// never show them.
//
// # Keys, the client key and the licensing ID backup
//
// First-authentication keys get their IDs ("k-" and 16 hex digits) and
// random secrets (20 characters of an alphabet without 0, O, 1 and I, as
// XXXXX-XXXXX-XXXXX-XXXXX) here, from Config.Random; a mass key may take a
// typed password instead. Whether a secret is free and whether a one-time
// key is used is core's to decide. Lists mask secrets as "••••" and the
// last two characters unless asked with show=true; the answer to a create
// shows them.
//
// The client key is uploaded as the DER of a 2048-bit RSA public key, as a
// SubjectPublicKeyInfo or PKCS#1, and kept as a SubjectPublicKeyInfo; its
// fingerprint is the SHA-256 of that DER. Anything else is 400
// invalid_client_key with the reason.
//
// A licensing ID backup is the main ID encrypted by core/licensingid
// (argon2id and XChaCha20-Poly1305) under a password of 8 to 256 bytes. A
// restore decrypts one and hands it to Config.RestoreIdentity; tallyd
// writes it to the data directory and uses it from its next start, so the
// running server keeps signing with the ID it started with. A wrong
// password (wrong_password) or a damaged file (damaged_backup) is refused
// before anything is written. The key derivations run one at a time. Since
// neither changes the replicated state, neither is in the audit log; both
// are logged at info level with the user and address, refusals included.
//
// # Lists
//
// Paged lists take page (from 1) and pageSize (1 to 1000, default the
// property server.pageSize) and answer {"total","page","pageSize","items"};
// a page past the end has no items.
//
// # Live updates and history
//
// The admin UI learns what changed over the events WebSocket
// (GET /api/v1/events, see events.go): its first message carries the
// token, checked like a bearer token, and the server then sends the
// topics whose views changed ("features", "devices", …), coalesced to at
// most one message every 250 ms. Server.Notify maps every applied request
// to topics through one table (commandTopics); device connections
// (Server.OnlineChanged), discovery scans and cluster changes
// (Server.ClusterChanged) raise theirs. A connection ends when its token
// expires or is revoked, when its client falls behind, and at Close.
//
// GET /api/v1/history answers the last 24 hours of devices online and
// counts used per feature, sampled by Server.RunHistory every
// Config.HistoryInterval (one minute) into rings in memory: per node, not
// replicated, forgotten at a restart. A model upload that does not parse
// is refused with the line and column of the mistake in the error body.
package transport
