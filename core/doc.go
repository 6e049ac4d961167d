// Package core is Tally's licensing engine: the rules of feature lines,
// leases, devices, reservations, named license pools, properties,
// administrators, first-authentication keys, the cluster's CA and join
// tokens, the exchange with the back office and the audit log, kept as a
// deterministic state machine. It
// imports nothing of Tally's outside core and does no I/O: the replication
// layer feeds it commands in log order and reads its views; the network
// layers never decide a rule.
//
// # Commands
//
// Every change is a Command wrapped in a Request that carries the leader's
// timestamp and a RequestID (a client session and a sequence number). Apply
// never reads a clock: time is the request's, and never goes back (a new
// leader with a slower clock does not rewind it). Before each command,
// leases due by that time expire and lines start or end; the leader also
// proposes a Tick every second or so. Every decision — is a count free, is a
// request a duplicate — is taken inside Apply. A session remembers the last
// 1,024 sequence numbers it applied (a sliding window), so a retried request
// is applied at most once; sessions idle for Config.SessionTTL are
// forgotten. A refused command returns an error wrapping one of the
// sentinels in errors.go and changes nothing but the clock.
//
// # Feature lines and the served-version rule
//
// Rights arrive as sets of FeatureLines from a source (an activation or a
// rights file) with a sequence number that must grow. Lines of the same
// feature and version form a group (a row of the Features view); the groups
// of a feature form a family. A request for version v is served by any group
// of version >= v, lowest serving version first, so later versions stay free
// for requests that need them. Within a group, counts come from the line
// that expires last (permanent lines first), so leases are cut short by line
// expiry as rarely as possible.
//
// # Leases
//
// A Checkout states the count a device wants to hold of a feature at a
// version: more than it holds is granted all or nothing, fewer frees the
// difference at once, the same renews and zero returns. A lease lasts the
// borrow asked for (licensing.borrowInterval when none, never more than
// licensing.borrowIntervalMax) and never outlives a line it draws on; the
// grant tells the device to renew after licensing.renewInterval percent of
// it. Counts past a line's count, up to its overdraft, are granted and
// marked as overdraft; they are freed first on a partial return. Uncounted
// lines grant any count. A metered line records use; if it is not reusable,
// counts returned or expired later than its undo interval after the grant
// are consumed for good. When licensing.releaseOnDisconnect is on, a
// Disconnect frees the device's counts. When rights shrink or vanish, leases
// are placed again oldest first and those that no longer fit are revoked
// (Result.Changed lists them for the server to push).
//
// # Pools: reservations and the license model
//
// A group's total is divided among pools; pool 0 is the default pool. A
// reservation sets counts of a feature aside for the device with a hostid:
// that device draws on its reservation first, then on shared counts, and no
// other device may use them. An entry is satisfiable when the default pool
// holds all its counts (lowest serving version first, so a 1.0 reservation
// may be held by a 2.0 line, never the reverse); an unsatisfiable entry
// holds nothing back. A license model (package model) divides counts into
// named pools by absolute counts, percentages (rounded down) and a
// remainder, and its rules of access put each device in a pool, in the
// default pool, or deny it. A device draws the features its pool names only
// from that pool, and other features from the default pool. Loading a model
// that allocates more than the rights hold is refused; when rights shrink
// later, earlier partitions keep their shares and the pools view marks the
// short ones. Reservations and a model never coexist.
//
// # Administrators
//
// Administrators are users with roles: ADMIN holds every right, READ the
// views only, RESERVATIONS reservations and pools, OFFLINE back-office
// operations, DROPDEVICE dropping devices and KEYS first-authentication
// keys; User.Has says whether a user holds a right. User names have 1 to 64
// characters of letters, digits and . _ @ -. Password hashes are made
// outside apply (the KDF is slow and salted at random) and kept opaque; no
// view but Credentials returns them. The first user must hold ADMIN, and the
// last user with ADMIN can neither be deleted nor lose it, so users, once
// there are any, always include an administrator. Tokens are stateless:
// the transport signs them with the replicated token key (SetTokenKey keeps
// the first key unless told to replace it) and names the user's token epoch
// in them. Logout, a password change with Revoke and taking a role away
// move the epoch on, which ends every token issued before.
//
// # Audit
//
// The transport wraps every administrative command in Audited with the
// user and address that asked. When the inner command succeeds and changes
// something (a refused command, a retried request or a command that finds
// nothing to do leaves no trace), an AuditRecord is appended with the
// request's time, the actor, the command's type and a short detail that
// never shows a password hash or a secret. Each record's Hash is the SHA-256
// of the one before and its own fields, so VerifyAudit finds any record
// changed, removed or reordered, and Restore refuses a snapshot whose chain
// does not verify. Device commands are not audited, except onboarding,
// which writes its own record for every use of a key; a node joining the
// cluster (UseJoinToken) writes one too. The log keeps at most
// Config.MaxAuditRecords records; past that the oldest tenth is dropped and
// the first record kept anchors the chain.
//
// # First-authentication keys
//
// A device onboards by presenting the secret of a first-authentication key
// together with its own public key, which becomes its credential for later
// connections. One-time keys onboard exactly one device, ever; mass keys
// onboard any number and count their uses. Key IDs and secrets are made
// outside apply (at random, or a mass key's secret typed by an
// administrator) and carried in CreateKeys, at most 10,000 a command; a
// secret has 8 to 128 printable ASCII characters, and no two keys share
// one, counting used and inactive keys. Keys are active, inactive or used
// (a one-time key after onboarding; it stays used, even when its device is
// dropped). Onboard finds the key by its secret inside apply, so of many
// devices racing for a one-time key exactly one wins; an unknown or deleted
// key, an inactive one and a used one are each refused with their own
// error. A device that has a credential cannot onboard with another public
// key (ErrAlreadyOnboarded), or a mass key would let anyone take over an
// onboarded device by its hostid: an administrator drops the device first.
// The same device repeating its onboarding (the same one-time key, or a
// mass key with the same public key) is told it is onboarded and nothing
// changes. Every onboarding appends
// an audit record by "device:" and the hostid. With
// security.requireOnboarding on, a device without a credential is denied
// checkouts and renewals (DenyNotOnboarded) but may still return counts.
// The client key is kept as uploaded; the transport checks that it is a
// 2048-bit RSA public key.
//
// # The main licensing ID
//
// Every node makes a local licensing ID at first start; the cluster's main
// ID is replicated state (SetMainLicensingID), so every node can sign with
// it. The first proposed wins; only a restore of a licensing-ID backup
// replaces it (Replace).
//
// # The cluster's trust
//
// The cluster CA, which signs the certificates of the cluster's nodes, is
// replicated so that any member can admit a node. The bootstrapping node
// proposes it (SetClusterCA); the first one stays, the same bytes again
// change nothing and other bytes are refused (ErrClusterCAExists). Core
// keeps the PEM as given and checks only its size; package
// raft/clustertls parses it. Administrators make join tokens
// (CreateJoinToken, DeleteJoinToken): an ID of lower-case letters and
// digits, the 32-byte verifier of the token's secret (the secret itself
// never reaches the state) and an expiry at most seven days ahead; the
// cluster holds at most 1,000. The member admitting a joiner checks the
// joiner's proof against JoinTokenVerifier and applies UseJoinToken, which
// decides in apply: a token admits one node, ever, so of two nodes racing
// on two members one wins. The same node repeating its join is told it
// joined; an expired token admits nobody. Expired tokens are not removed:
// the JoinTokens view marks them, and an administrator deletes them.
//
// # The exchange with the back office
//
// Every grant that raises a device's count adds to the open usage window:
// one checkout, and the counts then held as a peak, on each row of the
// Features view (feature and line version) it drew on. Renewals, returns
// and denials count nothing. Usage is replicated state, so the usage served
// by every node is in one place. BeginSync makes a capability request with
// the next request sequence: it closes the open window (giving it the next
// window ID, from its first grant to the request's time), carries every
// window the back office has not acknowledged and the activations asked
// for, and supersedes the request pending before. PendingSync hands it to
// the transport, which signs it with the main licensing ID (package
// core/capability). CompleteSync applies a verified response: it must
// answer the pending request (ErrSyncOutOfOrder) and carry a sequence above
// the last one applied (ErrSyncReplay); its lines replace those of its
// source (DefaultSyncSource) as LoadRights does, with the response sequence
// as the rights sequence; windows up to its UsageAck are dropped. A refused
// response changes nothing. Window IDs never change and a window is
// dropped only once the back office says it recorded it, so usage reaches
// the back office exactly once across lost requests and responses, retries
// and leader changes, provided the back office records windows by ID. The
// state keeps at most MaxUsageWindows closed windows; past that the open
// window stays open and keeps counting.
//
// # Database backups
//
// A database backup is a Snapshot. RestoreBackup puts one back in place of
// the whole state: rights, devices and leases, reservations, the model,
// properties, users, keys and the audit log are as the backup held them,
// but the clock does not go back (leases that ended since end at once) and
// the request sessions are kept, so retries stay deduplicated, and the main
// licensing ID, the cluster CA and the join tokens stay as they are: a
// database restore never changes them. Nor does it take the exchange with
// the back office back: every sequence becomes the higher of the running
// cluster's and the backup's, so no response refused before is accepted
// after; the running cluster's unreported usage stays; and the backup adds
// only windows under IDs the running cluster has not given (a backup of
// another machine's history), never any of its own past. A restore loses
// no usage, reports none twice and accepts no replay.
//
// # Invariant
//
// At every point, for every line, counts used plus consumed never exceed
// its count and overdraft used never exceeds its overdraft; a one-time key
// is used by at most one device, a join token by at most one node; the
// audit chain verifies; usage windows are above the acknowledged one, in
// increasing order, and a pending request is the latest one made. The property tests check this after every command
// of random sequences, together with a snapshot restored mid-way replaying
// to the same state.
package core
